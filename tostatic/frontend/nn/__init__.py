"""frontend/nn"""
