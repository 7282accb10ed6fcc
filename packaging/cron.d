# /etc/cron.d/laju-backup: the schedule of laju-backup(1).
# Each job walks the profiles (`laju-backup profiles`: every /etc/laju-backup/conf.d/NAME.env, and
# the main settings file /etc/laju-backup/laju-backup.env when it names a database) and writes one
# line per database to /var/log/laju-backup.log. On a host where nothing is configured yet each run
# logs one line and exits 0; settings that name no database, or a database without a key, fail.
#
# A run prints nothing when every database succeeded, and one line per failed database otherwise:
# cron mails that to MAILTO, by default root (the user the jobs run as; delivery needs a mail
# transport agent). Uncomment and set MAILTO to send failures elsewhere.
#MAILTO=root
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Daily backup at 01:00.
0 1 * * * root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup
# Weekly clean-up by retention, Sunday at 02:00.
0 2 * * 0 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles clean
# Weekly restore drill, Saturday at 03:00: verify the newest backup and two older ones.
0 3 * * 6 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles verify --sample 2
# Incremental restore points every 15 minutes (see laju-backup-backup(1), INCREMENTAL), for the
# databases whose settings say BACKUP_INCREMENTAL=true; the others are skipped. Uncomment to use.
#*/15 * * * * root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup --incremental --if-enabled
# Weekly clean-up of restore points by the same retention, Sunday at 02:30, for the same databases
# (a no-op for the others, so it stays on).
30 2 * * 0 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles clean --points --if-enabled
# Weekly drill of restore points, Saturday at 03:30, for the same databases: rebuild the newest
# point from every block it needs and check it (finds a damaged pack that a backup run never reads).
30 3 * * 6 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles verify --at latest --if-enabled
# Catch-up after boot: cron does not run jobs missed while the host was down; ten minutes after a
# boot, back up every database whose newest backup is older than a day.
@reboot root sleep 600 && [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup --if-older-than 24h
