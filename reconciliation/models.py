"""Medication reconciliation models."""
