# mk/install.mk: install/uninstall, the unit generated from its template, man pages from Markdown,
# `make verify-unit` and `make unit-security`. Included by the Makefile, which defines PREFIX, BINDIR,
# MANDIR, SYSCONFDIR, DESTDIR, VERSION and BUILD.

INSTALL ?= install

# Where systemd looks, as the local systemd says; a prefix-relative guess without it.
PW_HAVE_SYSTEMD_PC := $(shell pkg-config --exists systemd 2>/dev/null && echo y)
SYSTEMDUNITDIR ?= $(if $(PW_HAVE_SYSTEMD_PC),$(shell pkg-config --variable=systemdsystemunitdir systemd),$(PREFIX)/lib/systemd/system)
TMPFILESDIR    ?= $(if $(PW_HAVE_SYSTEMD_PC),$(shell pkg-config --variable=tmpfilesdir systemd),$(PREFIX)/lib/tmpfiles.d)
# journald reads catalogs from here whatever PREFIX is.
CATALOGDIR     ?= /usr/lib/systemd/catalog
PW_CONFDIR     := $(SYSCONFDIR)/pullwatch

PW_EXAMPLE_CONFIG  := config/pullwatch.yaml.example
PW_EXAMPLE_PREHEAT := config/preheat.yaml.example
PW_MAN_PAGES       := $(BUILD)/man/pullwatch.8 $(BUILD)/man/pullwatch.yaml.5
PW_UNIT            := $(BUILD)/systemd/pullwatch.service
PW_VERIFY_DIR      := $(BUILD)/verify

# $(call pw_unit_sed,BINDIR): the template's @VARS@ filled in.
pw_unit_sed = sed -e 's|@BINDIR@|$(1)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

# Regenerated every time: BINDIR may differ from the last run, and sed costs nothing.
$(PW_UNIT): systemd/pullwatch.service.in _pw_always
	@mkdir -p $(@D)
	@$(call pw_unit_sed,$(BINDIR)) $< > $@.tmp && mv $@.tmp $@

# Man pages: Markdown through go-md2man (Debian package go-md2man). The date is the source's last
# commit, so a rebuild of the same tree gives the same page. go-md2man 2.0.2 (bookworm) puts a newline
# after a wrapped table cell's "T}", which pushes the next cell onto a row of its own: perl joins them
# (a no-op with releases that get it right).
$(BUILD)/man/%: man/%.md
	@command -v go-md2man >/dev/null || { echo "go-md2man missing: apt-get install go-md2man (or run: make deps)" >&2; exit 1; }
	@mkdir -p $(@D)
	@d=$$(git log -1 --format=%cs -- $< 2>/dev/null); [ -n "$$d" ] || d=$$(date +%F); \
	sed -e 's|@VERSION@|$(VERSION)|g' -e "s|@DATE@|$$d|g" -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< \
		| go-md2man | perl -0pe 's/\nT\}\n\t/\nT}\t/g' > $@.tmp && mv $@.tmp $@

man: $(PW_MAN_PAGES)

# Existing files under /etc are the operator's: an example is installed only where none is, and
# uninstall removes only what is still identical to the example.
install: $(BUILD)/pullwatch $(PW_UNIT) $(PW_MAN_PAGES) $(PW_EXAMPLE_CONFIG) $(PW_EXAMPLE_PREHEAT)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(CATALOGDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(PW_CONFDIR)
	$(INSTALL) -m 0755 $(BUILD)/pullwatch $(DESTDIR)$(BINDIR)/pullwatch
	$(INSTALL) -m 0644 $(PW_UNIT) $(DESTDIR)$(SYSTEMDUNITDIR)/pullwatch.service
	$(INSTALL) -m 0644 systemd/pullwatch-cri.socket $(DESTDIR)$(SYSTEMDUNITDIR)/pullwatch-cri.socket
	$(INSTALL) -m 0644 systemd/pullwatch.catalog $(DESTDIR)$(CATALOGDIR)/pullwatch.catalog
	$(INSTALL) -m 0644 systemd/pullwatch.tmpfiles $(DESTDIR)$(TMPFILESDIR)/pullwatch.conf
	$(INSTALL) -m 0644 $(BUILD)/man/pullwatch.8 $(DESTDIR)$(MANDIR)/man8/pullwatch.8
	$(INSTALL) -m 0644 $(BUILD)/man/pullwatch.yaml.5 $(DESTDIR)$(MANDIR)/man5/pullwatch.yaml.5
	@for pair in pullwatch.yaml:$(PW_EXAMPLE_CONFIG) preheat.yaml:$(PW_EXAMPLE_PREHEAT); do \
		dst="$(DESTDIR)$(PW_CONFDIR)/$${pair%%:*}"; src="$${pair#*:}"; \
		if [ -e "$$dst" ] || [ -L "$$dst" ]; then \
			echo "install: keeping existing $$dst"; \
		else \
			echo "$(INSTALL) -m 0644 $$src $$dst"; $(INSTALL) -m 0644 "$$src" "$$dst" || exit 1; \
		fi; \
	done
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v journalctl >/dev/null; then \
			journalctl --update-catalog || echo "install: journalctl --update-catalog failed" >&2; fi; \
		if command -v systemd-tmpfiles >/dev/null; then \
			systemd-tmpfiles --create $(TMPFILESDIR)/pullwatch.conf || true; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi; \
		echo "install: done; enable with: systemctl enable --now pullwatch"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pullwatch $(DESTDIR)$(SYSTEMDUNITDIR)/pullwatch.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/pullwatch-cri.socket \
		$(DESTDIR)$(CATALOGDIR)/pullwatch.catalog $(DESTDIR)$(TMPFILESDIR)/pullwatch.conf \
		$(DESTDIR)$(MANDIR)/man8/pullwatch.8 $(DESTDIR)$(MANDIR)/man5/pullwatch.yaml.5
	@for pair in pullwatch.yaml:$(PW_EXAMPLE_CONFIG) preheat.yaml:$(PW_EXAMPLE_PREHEAT); do \
		dst="$(DESTDIR)$(PW_CONFDIR)/$${pair%%:*}"; src="$${pair#*:}"; \
		[ -e "$$dst" ] || continue; \
		if [ -f "$$src" ] && cmp -s "$$src" "$$dst"; then \
			echo "rm -f $$dst"; rm -f "$$dst"; \
		else \
			echo "uninstall: keeping modified $$dst"; \
		fi; \
	done
	@rmdir $(DESTDIR)$(PW_CONFDIR) 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v journalctl >/dev/null; then journalctl --update-catalog || true; fi; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi; \
		echo "uninstall: state in /var/lib/pullwatch is left in place"; \
	fi

# The unit exactly as installed, but with ExecStart= pointing at the built binary (verify checks that
# it exists) and the man pages from the build on MANPATH (verify checks Documentation=). Fails on
# any complaint about the unit, and when the exposure rises above 3.0 (systemd-analyze's scale x10).
PW_UNIT_THRESHOLD ?= 30
verify-unit: $(BUILD)/pullwatch $(PW_MAN_PAGES)
	@command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: apt-get install systemd" >&2; exit 1; }
	@rm -rf $(PW_VERIFY_DIR) && mkdir -p $(PW_VERIFY_DIR)/man/man8 $(PW_VERIFY_DIR)/man/man5
	@cp $(BUILD)/man/pullwatch.8 $(PW_VERIFY_DIR)/man/man8/
	@cp $(BUILD)/man/pullwatch.yaml.5 $(PW_VERIFY_DIR)/man/man5/
	@$(call pw_unit_sed,$(abspath $(BUILD))) systemd/pullwatch.service.in > $(PW_VERIFY_DIR)/pullwatch.service
	@cp systemd/pullwatch-cri.socket $(PW_VERIFY_DIR)/pullwatch-cri.socket
	@man=--man=no; command -v man >/dev/null && man=--man=yes; \
	out=$$(MANPATH=$(abspath $(PW_VERIFY_DIR)/man) systemd-analyze verify $$man \
		$(PW_VERIFY_DIR)/pullwatch.service $(PW_VERIFY_DIR)/pullwatch-cri.socket 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ] || echo "$$out" | grep -q pullwatch; then \
		echo "$$out" >&2; echo "verify-unit: systemd-analyze verify failed (exit $$rc)" >&2; exit 1; fi
	@systemd-analyze security --offline=true --threshold=$(PW_UNIT_THRESHOLD) \
		$(PW_VERIFY_DIR)/pullwatch.service > $(PW_VERIFY_DIR)/security.txt 2>&1 \
		|| { cat $(PW_VERIFY_DIR)/security.txt >&2; echo "verify-unit: exposure above $(PW_UNIT_THRESHOLD)/10" >&2; exit 1; }
	@echo "verify-unit: ok, $$(grep -o 'Overall exposure level.*' $(PW_VERIFY_DIR)/security.txt)"

# The full `systemd-analyze security` table; docs/security.md explains each remaining exposure.
unit-security: verify-unit
	@cat $(PW_VERIFY_DIR)/security.txt

_pw_always:

.PHONY: install uninstall man verify-unit unit-security _pw_always
