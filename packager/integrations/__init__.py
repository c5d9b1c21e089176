"""Integrations of packages with other serving systems (`packager.integrations.ray`: Ray Serve)."""
