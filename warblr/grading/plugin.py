"""pytest plugin: --impl switch, points, hints, score table, results.json (being built)."""
