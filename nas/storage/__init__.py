"""A run on disk: the Optuna-backed trial store, the strategy checkpoint, the Pareto front
of the stored trials and the choice of a trial from it."""
