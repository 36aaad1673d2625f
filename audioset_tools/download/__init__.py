"""Download orchestration: planning, pacing, the ledger, the runner, unavailable lists, doctor."""
