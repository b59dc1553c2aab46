"""OAuth 2.1 / OpenID Connect provider for portals (DESIGN §4 step 10).

models (tables) · service (rules) · server (Authlib adapter) · routes (HTTP) · pages (HTML).
"""
