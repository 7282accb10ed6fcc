# /etc/cron.d/laju-backup: the schedule of laju-backup(1).
# Each job walks the profiles (/etc/laju-backup/conf.d/*.env, else the main settings file
# /etc/laju-backup/laju-backup.env) and writes one line per database to /var/log/laju-backup.log.
# Until a database and an encryption key are configured, each run logs one line and exits 0.
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
