"""Hand-designed architectures written as genomes of the search spaces."""
