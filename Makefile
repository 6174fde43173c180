# The two entry points of the README.  Each installs what it needs first.
#   make archive   build, publish and verify the archive of PROFILE (default trixie)
#   make check     lint and run the test suite
PROFILE ?= trixie
VENV    ?= .venv
PYTHON  ?= python3
CS       = $(VENV)/bin/clusterstack

# Host tools the builder and the tests drive.  Kept in one place so a fresh
# Debian 12 machine gets exactly what the code calls.
APT_PACKAGES = sbuild mmdebstrap apt-utils gnupg gpgv uidmap tasksel dpkg-dev \
	debhelper devscripts lintian fakeroot quilt zstd xz-utils curl ca-certificates strace \
	iproute2 util-linux procps psmisc pacemaker-cli-utils corosync crmsh pcs \
	python3 python3-venv qemu-system-x86 qemu-utils e2fsprogs docker.io rsync git chromium \
	apt-cacher-ng diffoscope-minimal systemd-container openssh-client icinga2-bin

.PHONY: setup host-setup archive check cluster systemd-cluster howto vm-cluster installer benchmark lint gitlab-ci-local
setup: host-setup $(VENV)/.installed

host-setup:
	@missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(APT_PACKAGES) 2>/dev/null \
		| awk '$$2 != "ii" {print $$1}'; for p in $(APT_PACKAGES); do \
		dpkg-query -W $$p >/dev/null 2>&1 || echo $$p; done | sort -u); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		norc=; case " $$(echo $$missing) " in *" apt-cacher-ng "*) \
			[ -e /usr/sbin/policy-rc.d ] || { norc=1; printf '#!/bin/sh\nexit 101\n' \
				> /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; };; esac; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; rc=$$?; \
		[ -z "$$norc" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ]; \
	fi
	@# verify --installer runs its own apt-cacher-ng (own port, cache and logs); the
	@# system service stays off: above, its install runs under a policy-rc.d that
	@# refuses to start services, and here it is disabled at boot.
	@[ ! -x /etc/init.d/apt-cacher-ng ] || update-rc.d apt-cacher-ng disable >/dev/null 2>&1 || true
	@# sbuild and mmdebstrap in unshare mode need subordinate ids for root.
	@grep -q '^root:100000:65536$$' /etc/subuid || echo 'root:100000:65536' >> /etc/subuid
	@grep -q '^root:100000:65536$$' /etc/subgid || echo 'root:100000:65536' >> /etc/subgid

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# gitlab-ci-local runs the generated .gitlab-ci.yml as a GitLab runner would
# (the e2e test does).  4.60.0 is the last release that runs on node 18/20;
# Debian's nodejs and npm come in only when there is no npm at all, since
# another node's package (NodeSource's) conflicts with Debian's npm.
GITLAB_CI_LOCAL_VERSION = 4.60.0
GITLAB_CI_LOCAL_DIR ?= $(or $(CLUSTERSTACK_CACHE),$(HOME)/.cache/clusterstack)/gitlab-ci-local-$(GITLAB_CI_LOCAL_VERSION)
GITLAB_CI_LOCAL = $(GITLAB_CI_LOCAL_DIR)/node_modules/.bin/gitlab-ci-local

gitlab-ci-local: host-setup $(GITLAB_CI_LOCAL)
	@echo $(GITLAB_CI_LOCAL)

$(GITLAB_CI_LOCAL):
	@command -v npm >/dev/null || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; }
	mkdir -p $(GITLAB_CI_LOCAL_DIR)
	npm install --prefix $(GITLAB_CI_LOCAL_DIR) --no-save --no-audit --no-fund -q \
		gitlab-ci-local@$(GITLAB_CI_LOCAL_VERSION)
	$@ --version

archive: setup
	$(CS) build --profile $(PROFILE)
	$(CS) publish --profile $(PROFILE)
	$(CS) verify --profile $(PROFILE)

lint: setup
	$(VENV)/bin/ruff check .

check: setup lint
	$(VENV)/bin/pytest -ra

cluster: setup
	$(CS) verify --cluster --profile $(PROFILE)

systemd-cluster: setup
	$(CS) verify --cluster --init systemd --profile $(PROFILE)

# docs/howto-mariadb-failover.md, its commands run word for word on systemd nodes.
howto: setup
	$(CS) verify --cluster --init systemd --howto docs/howto-mariadb-failover.md --profile $(PROFILE)

vm-cluster: setup
	$(CS) verify --cluster --vm --profile $(PROFILE)

installer: setup
	$(CS) verify --installer --profile $(PROFILE)
