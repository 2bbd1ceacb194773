"""Virus scanning through clamd."""
