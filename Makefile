# Build, package and install laju-backup.
#   make build     release binary (static Swift stdlib, hardened) + shell completions
#   make deb       ../laju-backup_<version>_<arch>.deb via dpkg-buildpackage (needs debhelper)
#   make install   install into $(DESTDIR)$(PREFIX) (default /usr/local) and /etc
# Swift is not a Debian package: put its usr/bin on PATH or pass SWIFT=/path/to/swift.

SWIFT     ?= swift
SCRATCH   ?= .build-release
PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR   ?=

# Static stdlib: the target host needs no Swift runtime. The -X flags add what a plain release
# build lacks for Debian's hardening checks (BIND_NOW, fortify, stack protector) and what
# dpkg-buildflags gives C on amd64 (stack clash, CET); relro and PIE are SwiftPM's defaults.
SWIFT_BUILD_FLAGS = -c release --static-swift-stdlib --scratch-path $(SCRATCH) \
	-Xlinker -z -Xlinker now \
	-Xcc -D_FORTIFY_SOURCE=2 -Xcc -fstack-protector-strong \
	-Xcc -fstack-clash-protection $(CF_PROTECTION)
CF_PROTECTION = $(if $(filter x86_64,$(shell uname -m)),-Xcc -fcf-protection=full)

BINDIR_BUILT = $(SCRATCH)/release
BIN = $(BINDIR_BUILT)/laju-backup
COMPLETIONS = $(SCRATCH)/completions

MAN1 = $(wildcard man/*.1)
MAN5 = $(wildcard man/*.5)

.PHONY: all build completions deb install install-files install-dirs clean

all: build

build:
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product laju-backup
	$(MAKE) completions

completions:
	mkdir -p $(COMPLETIONS)
	# bash-completion sources the file: no #! line (lintian: bash-completion-with-hashbang).
	$(BIN) --generate-completion-script bash | sed '1{/^#!/d}' > $(COMPLETIONS)/laju-backup.bash
	$(BIN) --generate-completion-script zsh > $(COMPLETIONS)/_laju-backup
	$(BIN) --generate-completion-script fish > $(COMPLETIONS)/laju-backup.fish

deb:
	dpkg-buildpackage -b -us -uc

# Paths in the cron file and the profile runner follow PREFIX (no-op for PREFIX=/usr).
SUBST = sed -e 's|/usr/bin/laju-backup|$(PREFIX)/bin/laju-backup|g' \
	-e 's|/usr/lib/laju-backup|$(PREFIX)/lib/laju-backup|g' \
	-e 's|/etc/laju-backup|$(SYSCONFDIR)/laju-backup|g'

install: install-files install-dirs

# What the .deb ships (debian/rules calls this one).
install-files:
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/laju-backup
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -D -m 0644 $(COMPLETIONS)/laju-backup.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/laju-backup
	install -D -m 0644 $(COMPLETIONS)/_laju-backup $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_laju-backup
	install -D -m 0644 $(COMPLETIONS)/laju-backup.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/laju-backup.fish
	install -d $(DESTDIR)$(PREFIX)/lib/laju-backup
	$(SUBST) packaging/run-profiles > $(DESTDIR)$(PREFIX)/lib/laju-backup/run-profiles
	chmod 0755 $(DESTDIR)$(PREFIX)/lib/laju-backup/run-profiles
	install -d $(DESTDIR)$(SYSCONFDIR)/cron.d $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(SYSCONFDIR)/laju-backup
	$(SUBST) packaging/cron.d > $(DESTDIR)$(SYSCONFDIR)/cron.d/laju-backup
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/cron.d/laju-backup
	install -m 0644 packaging/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/laju-backup
	# The settings file will hold the key: root-only. Never overwrite an existing one.
	[ -e $(DESTDIR)$(SYSCONFDIR)/laju-backup/laju-backup.env ] || \
		install -m 0600 packaging/laju-backup.env $(DESTDIR)$(SYSCONFDIR)/laju-backup/laju-backup.env

# Private directories; the .deb creates these in postinst instead (dpkg would reset their mode).
install-dirs:
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/laju-backup/conf.d
	install -d -m 0700 $(DESTDIR)/var/lib/laju-backup

clean:
	rm -rf $(SCRATCH)
