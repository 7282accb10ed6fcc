# /etc/cron.d/laju-backup: the schedule of laju-backup(1).
# Each job walks the profiles (/etc/laju-backup/conf.d/*.env, else the main settings file
# /etc/laju-backup/laju-backup.env) and writes one line per database to the log.
# Until a database and an encryption key are configured, each run logs one line and exits 0.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Daily backup at 01:00.
0 1 * * * root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup >>/var/log/laju-backup.log 2>&1
# Weekly clean-up by retention, Sunday at 02:00.
0 2 * * 0 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles clean >>/var/log/laju-backup.log 2>&1
