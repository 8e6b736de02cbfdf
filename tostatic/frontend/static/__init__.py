"""frontend/static"""
