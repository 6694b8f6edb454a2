"""CDR sources -> rows -> database: Master.csv layouts, files, follow, sync, loader."""
