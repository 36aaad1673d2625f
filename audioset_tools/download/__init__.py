"""Stage 2, download: plans, the scheduler, pacing, the ledger, reconciling, rebuilds, doctor."""
