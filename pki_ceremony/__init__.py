"""pki-ceremony"""
