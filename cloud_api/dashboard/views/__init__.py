"""The dashboard's pages, one module per area; each registers its routes in ``routes``."""
