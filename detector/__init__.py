"""arbwatch detector: raw exchange frames in, order books, opportunities and signals out."""
