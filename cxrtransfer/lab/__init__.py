"""The lab layer: operations outside DVC (the `cxrtransfer` command: the paper switch, local workers,
SLURM, the rehearsal, the ImageNet weights export, the GPU check). May import every other layer."""
