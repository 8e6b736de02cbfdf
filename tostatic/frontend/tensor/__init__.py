"""frontend/tensor"""
