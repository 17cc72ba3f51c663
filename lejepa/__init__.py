"""The method: SIGReg, the LeJEPA loss and its baselines, views, backbones, data and the training loop.

Nothing here imports evaluation/, slurm/ or experiments/ (tests/test_layering.py checks it).
"""
