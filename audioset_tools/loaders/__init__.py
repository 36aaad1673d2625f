"""Loading a finished dataset for training: ``torch_data`` holds the PyTorch datasets and episode sampler."""
