"""Reading results: the front plot, the HTML report, scoring an export on a dataset, and
the fidelity report."""
