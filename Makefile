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
	python3 python3-venv qemu-system-x86 qemu-utils e2fsprogs docker.io

.PHONY: setup host-setup archive check cluster vm-cluster benchmark lint
setup: host-setup $(VENV)/.installed

host-setup:
	@missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(APT_PACKAGES) 2>/dev/null \
		| awk '$$2 != "ii" {print $$1}'; for p in $(APT_PACKAGES); do \
		dpkg-query -W $$p >/dev/null 2>&1 || echo $$p; done | sort -u); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; \
	fi
	@# sbuild and mmdebstrap in unshare mode need subordinate ids for root.
	@grep -q '^root:100000:65536$$' /etc/subuid || echo 'root:100000:65536' >> /etc/subuid
	@grep -q '^root:100000:65536$$' /etc/subgid || echo 'root:100000:65536' >> /etc/subgid

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

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

vm-cluster: setup
	$(CS) verify --cluster --vm --profile $(PROFILE)
