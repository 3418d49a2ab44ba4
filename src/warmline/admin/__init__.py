"""Administration: environments and geographies, app registrations and application users, the
bot ↔ omnichannel connection (enable, disconnect, disable, refresh, voice), extensions, and ALM
(solution export/import with managed and unmanaged layers). Every action is audited.
"""
