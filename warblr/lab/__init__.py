"""The course lab on top of the engine: datasets, the item store, extract, analyse, report, plots, commands."""
