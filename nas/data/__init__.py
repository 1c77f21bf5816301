"""Datasets: the Kaggle CSV readers, the parsed-array cache, splits, duplicates,
augmentation and the built-in synthetic faces. Imports only nas.core."""
