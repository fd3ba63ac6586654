"""The report layer: the study summary in markdown and its figures. Imports the stats layer."""
