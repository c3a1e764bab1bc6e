# The leaderboard app stores nothing of its own: suite scores are the registry's rows (written only by
# webapp.leaderboard.services), the data version is core's (webapp.core.models.DataVersion).
