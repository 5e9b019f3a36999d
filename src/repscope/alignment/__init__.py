"""Alignment between representations: ridge encoding and similarity measures."""
