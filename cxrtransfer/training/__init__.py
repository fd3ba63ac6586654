"""The training layer: output layouts, datasets on the device, devices and precision, DDP, the loop,
checkpoints and what a training stage writes. Imports the data, models and stats layers."""
