"""frontend/capture"""
