"""qido"""
