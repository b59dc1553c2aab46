"""Outgoing messages (SMS, WeChat template messages) behind one sender interface."""
