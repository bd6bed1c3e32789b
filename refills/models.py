"""Refills and renewals models."""
