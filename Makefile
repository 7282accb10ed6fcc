# Build, package and install laju-backup.
#   make build     release binary (static Swift stdlib, hardened) + shell completions
#   make orig      the upstream tarballs of the source package, in ..; unpacks swift-argument-parser/
#   make deb       ../laju-backup_<version>_<arch>.deb via dpkg-buildpackage -b (needs debhelper)
#   make dsc       ../laju-backup_<version>.dsc, the source package (commit first: the orig tarball
#                  is made from HEAD)
#   make install   install into $(DESTDIR)$(PREFIX) (default /usr/local) and /etc
#   make test      every test, as CI runs them (scripts/test.sh)
#   make fmt       format Swift (swift-format, .swift-format) and C (clang-format, .clang-format)
#   make lint      fail on unformatted code, a name used against the layer order, a cast to a
#                  concrete store, a function over 80 lines (CONTRIBUTING.md), or a settings
#                  template postinst would not recognise as unedited
# Swift is not a Debian package: put its usr/bin on PATH or pass SWIFT=/path/to/swift.

SWIFT     ?= swift
SCRATCH   ?= .build-release
PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR   ?=

# Compiler and linker flags. debian/rules passes dpkg-buildflags' CFLAGS, CPPFLAGS and LDFLAGS
# (DEB_BUILD_OPTIONS and DEB_BUILD_MAINT_OPTIONS apply); a plain `make build` uses the same
# hardening by hand. CFLAGS/CPPFLAGS reach the C target (and Swift's clang importer) through -Xcc,
# LDFLAGS the linker through -Xlinker. The C prefix map (-ffile-prefix-map=DIR=.) also becomes
# Swift's -file-prefix-map, so that no build path ends up in the binary.
CF_PROTECTION = $(if $(filter x86_64,$(shell uname -m)),-fcf-protection)
CFLAGS    ?= -g -O2 -ffile-prefix-map=$(CURDIR)=. -fstack-protector-strong -fstack-clash-protection \
	$(CF_PROTECTION) -Wformat -Werror=format-security
CPPFLAGS  ?= -Wdate-time -D_FORTIFY_SOURCE=2
LDFLAGS   ?= -Wl,-z,relro -Wl,-z,now
# Extra swift-build arguments: -j N, -Xswiftc -Onone (debian/rules maps DEB_BUILD_OPTIONS here).
SWIFT_EXTRA_FLAGS ?=

comma := ,
XCC      = $(foreach f,$(CPPFLAGS) $(CFLAGS),-Xcc $(f))
XLINKER  = $(foreach f,$(LDFLAGS),$(if $(filter -Wl$(comma)%,$(f)),$(foreach a,$(subst $(comma), ,$(patsubst -Wl$(comma)%,%,$(f))),-Xlinker $(a)),-Xswiftc -Xclang-linker -Xswiftc $(f)))
XPREFIX  = $(foreach m,$(patsubst -ffile-prefix-map=%,%,$(filter -ffile-prefix-map=%,$(CFLAGS))),-Xswiftc -file-prefix-map -Xswiftc $(m))

# Static stdlib: the target host needs no Swift runtime. --disable-local-rpath: no RUNPATH
# ($ORIGIN) in an executable that loads no library of its own. Reproducible across build paths,
# beyond the prefix maps: -disable-incremental-llvm-codegen, or each Swift object carries a hash
# of its LLVM module (.swift_modhash) that depends on the build path; -no-clang-module-breadcrumbs,
# or the debug info names the build's clang module cache, whose hashed directory names depend on
# the build path too (those .pcm files exist only in the build tree anyway).
REPRODUCIBLE = -Xswiftc -Xfrontend -Xswiftc -disable-incremental-llvm-codegen -Xswiftc -no-clang-module-breadcrumbs
SWIFT_BUILD_FLAGS = -c release --static-swift-stdlib --disable-local-rpath --scratch-path $(SCRATCH) \
	$(XCC) $(XLINKER) $(XPREFIX) $(REPRODUCIBLE) $(SWIFT_EXTRA_FLAGS)

BINDIR_BUILT = $(SCRATCH)/release
BIN = $(BINDIR_BUILT)/laju-backup
COMPLETIONS = $(SCRATCH)/completions

MAN1 = $(wildcard man/*.1)
MAN5 = $(wildcard man/*.5)

.PHONY: all build completions orig deb dsc install install-files install-config install-dirs clean test fmt lint

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

orig:
	debian/make-orig-tarballs.sh --unpack

deb: orig
	dpkg-buildpackage -b -us -uc

dsc: orig
	dpkg-buildpackage -S -us -uc -d

# Paths in the cron file and the profile runner follow PREFIX (no-op for PREFIX=/usr).
SUBST = sed -e 's|/usr/bin/laju-backup|$(PREFIX)/bin/laju-backup|g' \
	-e 's|/usr/lib/laju-backup|$(PREFIX)/lib/laju-backup|g' \
	-e 's|/etc/laju-backup|$(SYSCONFDIR)/laju-backup|g'

install: install-files install-config install-dirs

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
	install -d $(DESTDIR)$(SYSCONFDIR)/cron.d $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(SUBST) packaging/cron.d > $(DESTDIR)$(SYSCONFDIR)/cron.d/laju-backup
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/cron.d/laju-backup
	install -m 0644 packaging/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/laju-backup
	# The settings template. The .deb's postinst copies it to /etc/laju-backup when missing.
	install -D -m 0644 packaging/laju-backup.env $(DESTDIR)$(PREFIX)/share/laju-backup/laju-backup.env

# The settings file will hold the key: root-only. Never overwrite an existing one.
install-config:
	install -d $(DESTDIR)$(SYSCONFDIR)/laju-backup
	[ -e $(DESTDIR)$(SYSCONFDIR)/laju-backup/laju-backup.env ] || \
		install -m 0600 packaging/laju-backup.env $(DESTDIR)$(SYSCONFDIR)/laju-backup/laju-backup.env

# Private directories; the .deb creates these in postinst instead (dpkg would reset their mode).
install-dirs:
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/laju-backup/conf.d
	install -d -m 0700 $(DESTDIR)/var/lib/laju-backup

clean:
	rm -rf $(SCRATCH)

# Formatting and the checks of CONTRIBUTING.md. swift-format ships with the Swift toolchain,
# clang-format is Debian's (scripts/install-deps.sh --test installs it).
SWIFT_FORMAT ?= swift-format
CLANG_FORMAT ?= clang-format
SWIFT_CODE = Package.swift Sources Tests Fuzz/Package.swift Fuzz/Sources
C_CODE = $(wildcard CSupport/*.c CSupport/*.h CSupport/include/*.h Fuzz/c/*.c)

test:
	bash scripts/test.sh

fmt:
	$(SWIFT_FORMAT) format --in-place --recursive --parallel $(SWIFT_CODE)
	$(CLANG_FORMAT) -i $(C_CODE)

lint:
	$(SWIFT_FORMAT) lint --strict --recursive --parallel $(SWIFT_CODE)
	$(CLANG_FORMAT) --dry-run -Werror $(C_CODE)
	python3 scripts/check-layers.py Sources/LajuBackup
	python3 scripts/check-functions.py Sources CSupport
	@grep -qx "$$(md5sum <packaging/laju-backup.env | cut -d' ' -f1)" debian/laju-backup.postinst || \
	  { echo "packaging/laju-backup.env changed: add its md5sum to KNOWN_TEMPLATES in debian/laju-backup.postinst"; exit 1; }
