"""`triptych bench`: how many images per second the running pipeline turns into
comparisons, how far that is from what the three models alone allow on the same
cores, where each image's time goes, and what every process costs."""
