"""Padding ops."""
