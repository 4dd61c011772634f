# pyprof: non-recursive build into build/. `make V=1` shows the commands.
.DELETE_ON_ERROR:
.SUFFIXES:

B	:= build
CC	?= gcc
CLANG	?= clang
BPFTOOL	?= bpftool
LLVM_STRIP ?= llvm-strip
PREFIX	?= /usr/local

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN	:= -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare
CFLAGS	?= -O2 -g
# always applied, even with CFLAGS given on the command line
INCLUDES := -Iinclude -Icommon -I$(B)
PP_CFLAGS := $(WARN) -std=gnu11 -D_GNU_SOURCE $(INCLUDES) -MMD -MP
SHIM_CFLAGS := -include preload/glibc_compat.h \
	-fPIC -fvisibility=hidden -fno-omit-frame-pointer \
	-ftls-model=initial-exec
LIBS	:= -llz4 -lncursesw -ltinfo -lbpf -lelf -lz -lprotobuf-c -lm -lpthread
PROTOC_C ?= protoc-c
SHIM_LIBS := -ldl -lpthread -lm

ARCH	:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
# <asm/*.h> for libbpf's usdt.bpf.h (Debian multiarch)
BPF_INC	:= -I/usr/include/$(shell uname -m)-linux-gnu

# Link units, by place on the data path (docs/architecture.md):
#   libpyprof.so = preload/ + common/ (built -fPIC, hidden)
#   pyprof       = cli/ + viewer/ + collector/ + common/
# common/ is what both sides share: the ring, the CPython description.
COMMON_SRCS	:= $(wildcard common/*.c)
COMMON_OBJS	:= $(COMMON_SRCS:common/%.c=$(B)/common/%.o)
# the part of common/ the shim uses (ring_drain.c, which creates and
# drains the ring, is the collector's)
COMMON_SHIM_SRCS := $(addprefix common/,linetable.c mem.c pylayout.c pystate.c \
	pystr.c ring.c)
COMMON_SHIM_OBJS := $(COMMON_SHIM_SRCS:common/%.c=$(B)/common/shim/%.o)
PRELOAD_OBJS	:= $(patsubst %.c,$(B)/%.o,$(wildcard preload/*.c))
SHIM_OBJS	:= $(PRELOAD_OBJS) $(COMMON_SHIM_OBJS)
# pprof's schema, made C by protoc-c (Debian's protobuf-c-compiler)
PROTO_GEN	:= $(B)/collector/profile.pb-c.c $(B)/collector/profile.pb-c.h
COLLECTOR_OBJS	:= $(patsubst %.c,$(B)/%.o,$(wildcard collector/*.c)) \
	$(B)/collector/profile.pb-c.o
VIEWER_OBJS	:= $(patsubst %.c,$(B)/%.o,$(wildcard viewer/*.c))
CLI_OBJS	:= $(patsubst %.c,$(B)/%.o,$(wildcard cli/*.c))
PYPROF_OBJS	:= $(CLI_OBJS) $(VIEWER_OBJS) $(COLLECTOR_OBJS) $(COMMON_OBJS)
BPF_SRCS	:= $(wildcard ebpf/*.bpf.c)
BPF_SKELS	:= $(BPF_SRCS:ebpf/%.bpf.c=$(B)/ebpf/%.skel.h)
UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

.PHONY: all clean test demo setup install bench sanitize fuzz
all: $(B)/pyprof $(B)/libpyprof.so $(UNIT_BINS) $(B)/tests/pyembed3.11 \
	$(B)/tests/libppkeep.so $(B)/tests/ext/ppsub.so $(B)/bench_collector

setup:
	$(Q)./scripts/setup.sh

$(B)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -c $< -o $@

$(B)/collector/profile.pb-c.c: collector/profile.proto
	$(call msg,PROTOC,$@)
	@mkdir -p $(@D)
	$(Q)$(PROTOC_C) --proto_path=collector --c_out=$(@D) $<
$(B)/collector/profile.pb-c.h: $(B)/collector/profile.pb-c.c
$(B)/collector/profile.pb-c.o: $(B)/collector/profile.pb-c.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -I$(@D) -c $< -o $@
$(B)/collector/export_pprof.o: $(B)/collector/profile.pb-c.h

# The HTML report's JavaScript: the npm packages pinned in package.json
# and package-lock.json, installed into $(B)/web (never committed), then
# inlined with the page's own script and style (collector/html/) as a C
# header by scripts/html_assets.js. No npm, or no registry: one line
# saying so, and no pyprof.
WEB	:= $(B)/web
HTML_OWN := $(wildcard collector/html/*)
$(WEB)/.installed: package.json package-lock.json
	$(call msg,NPM,$(WEB))
	@mkdir -p $(WEB)
	@command -v npm >/dev/null || { echo "pyprof build: npm not found: the HTML report's JavaScript (d3-flame-graph, uPlot) is installed from the npm registry at build time; run scripts/setup.sh" >&2; exit 1; }
	$(Q)cp package.json package-lock.json $(WEB)/
	$(Q)cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund \
		--loglevel=error >npm.log 2>&1 || { tail -n 5 npm.log >&2; \
		echo "pyprof build: npm ci failed (is the npm registry reachable?): the HTML report's JavaScript cannot be installed; see $(WEB)/npm.log" >&2; exit 1; }
	$(Q)touch $@
$(B)/collector/html_assets.h: scripts/html_assets.js $(HTML_OWN) $(WEB)/.installed
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)node scripts/html_assets.js $(WEB)/node_modules collector/html > $@
$(B)/collector/export_html.o: $(B)/collector/html_assets.h

$(B)/preload/%.o: preload/%.c preload/glibc_compat.h
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) $(SHIM_CFLAGS) -c $< -o $@

$(B)/common/shim/%.o: common/%.c preload/glibc_compat.h
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) $(SHIM_CFLAGS) -c $< -o $@

# The shim runs in other roots too (Debian 11, glibc 2.31): no symbol
# may need a newer glibc (preload/glibc_compat.h)
SHIM_GLIBC_MAX := 2.31
$(B)/libpyprof.so: $(SHIM_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-z,defs -Wl,-z,now $^ -o $@ \
		-Wl,--no-as-needed -l:libdl.so.2 -l:libpthread.so.0 -Wl,--as-needed $(SHIM_LIBS)
	$(Q)objdump -T $@ | sed -n 's/.*(GLIBC_\([0-9.]*\)).*/\1 &/p' | \
		awk -v max=$(SHIM_GLIBC_MAX) '{ split($$1, a, "."); split(max, m, "."); \
		if (a[1] * 1000 + a[2] > m[1] * 1000 + m[2]) { print "needs glibc " $$0; bad = 1 } } \
		END { exit bad }' || { rm -f $@; exit 1; }

$(B)/pyprof: $(PYPROF_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LIBS)

# Unit tests link common/ and collector/; a test of shim code
# (interpose.o, shim.o and stallwrap.o define libc functions: never
# outside the shim) names the one preload object it needs.
$(B)/tests/test_pywalk: $(B)/preload/pyframe.o

$(B)/tests/%: tests/unit/%.c $(COLLECTOR_OBJS) $(COMMON_OBJS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -Icollector $< $(filter %.o,$^) -o $@ $(LIBS) -lunwind -ldl

# the collector's hot path replayed from a trace (scripts/bench.sh)
$(B)/bench_collector: scripts/bench_collector.c $(COLLECTOR_OBJS) $(COMMON_OBJS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -Icollector $< $(filter %.o,$^) -o $@ $(LIBS)

# A program embedding Debian's shared libpython3.11 (libpython3.11-dev),
# one of the interpreters under test (tests/interpreters). Debian's own
# python3.11-config: not a pyenv one earlier in PATH.
PY311_CONFIG ?= /usr/bin/python3.11-config
$(B)/tests/pyembed3.11: tests/embed/pyembed.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g $$($(PY311_CONFIG) --includes) $< -o $@ \
		$$($(PY311_CONFIG) --embed --ldflags)

# A C library a live target loads with ctypes after attach (test_inject)
$(B)/tests/libppkeep.so: tests/embed/ppkeep.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -shared -fPIC $< -o $@

# An extension module for Debian's python3.11, imported after attach
# (test_inject); the name CPython looks for is a symlink
PY311_EXT = $(B)/tests/ext/ppsub$$($(PY311_CONFIG) --extension-suffix)
$(B)/tests/ext/ppsub.so: tests/embed/ppsub.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g -shared -fPIC $$($(PY311_CONFIG) --includes) $< -o $@
	$(Q)ln -sf ppsub.so $(PY311_EXT)

# eBPF: vmlinux.h from the running kernel's BTF, .bpf.c -> .bpf.o -> .skel.h
$(B)/vmlinux.h:
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/ebpf/%.bpf.o: ebpf/%.bpf.c $(B)/vmlinux.h $(wildcard include/*.h common/*.h ebpf/*.h)
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(INCLUDES) $(BPF_INC) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@	# DWARF: not loaded, but opened (start-up)

$(B)/ebpf/%.skel.h: $(B)/ebpf/%.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# every collector-side object may include a skeleton
$(COLLECTOR_OBJS) $(VIEWER_OBJS) $(CLI_OBJS): $(BPF_SKELS)
.SECONDARY: $(BPF_SRCS:ebpf/%.bpf.c=$(B)/ebpf/%.bpf.o)

# Start-up: the few kernel types the wrap-mode objects' CO-RE
# relocations name, cut out of the running kernel's BTF, and that
# kernel's build id (its ELF notes). On the same kernel libbpf relocates
# against these few KiB instead of reading and parsing the kernel's
# megabytes of BTF once per object (collector/bpf.c, core_btf).
BPF_CORE_OBJS := $(addprefix $(B)/ebpf/,gil.bpf.o gc.bpf.o locks.bpf.o kmem.bpf.o sys.bpf.o)
$(B)/ebpf/core_btf.h: $(BPF_CORE_OBJS)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen min_core_btf /sys/kernel/btf/vmlinux $(@D)/core.btf \
		$(BPF_CORE_OBJS) >/dev/null
	$(Q){ echo "static const unsigned char pp_core_btf[] = {"; \
	  od -An -v -tx1 $(@D)/core.btf | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo "};"; echo "static const unsigned char pp_core_notes[] = {"; \
	  od -An -v -tx1 /sys/kernel/notes | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo "};"; } > $@
$(B)/collector/bpf.o: $(B)/ebpf/core_btf.h

# The trace reader under ASan+UBSan (any report fails the test): pyprof
# and the reader's unit tests in build-san/ (not the shim: it runs in
# other processes). tests/run.sh runs build-san/tests/ too.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
SAN_TESTS := test_trace test_crafted test_model test_segments test_procs \
	test_compact test_drain
sanitize:
	$(Q)$(MAKE) --no-print-directory B=build-san CFLAGS="$(SAN_FLAGS)" \
		LDFLAGS="$(SAN_FLAGS)" build-san/pyprof \
		$(SAN_TESTS:%=build-san/tests/%)

# The trace reader under libFuzzer (clang, ASan+UBSan): build-fuzz/.
# tests/run.sh runs it for a bounded time; scripts/fuzz.sh for longer.
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
fuzz:
	$(Q)$(MAKE) --no-print-directory B=build-fuzz CC=$(CLANG) \
		CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" \
		build-fuzz/fuzz/fuzz_trace

$(B)/fuzz/fuzz_trace: tests/fuzz/fuzz_trace.c $(COLLECTOR_OBJS) $(COMMON_OBJS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -fsanitize=fuzzer -Icollector $< \
		$(filter %.o,$^) -o $@ $(LIBS)

# its seeds' maker (scripts/fuzz.sh --seeds), an ordinary build
$(B)/fuzz/mkseeds: tests/fuzz/mkseeds.c $(COLLECTOR_OBJS) $(COMMON_OBJS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(PP_CFLAGS) $(CFLAGS) -Icollector $< $(filter %.o,$^) \
		-o $@ $(LIBS)

test: all sanitize fuzz
	$(Q)./tests/run.sh

demo: setup
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./scripts/demo.sh

bench: all
	$(Q)./scripts/bench.sh

install: $(B)/pyprof $(B)/libpyprof.so
	install -D -m 755 $(B)/pyprof $(DESTDIR)$(PREFIX)/bin/pyprof
	install -D -m 755 $(B)/libpyprof.so $(DESTDIR)$(PREFIX)/lib/pyprof/libpyprof.so

clean:
	rm -rf $(B) build-san build-fuzz

-include $(shell find $(B) -name '*.d' 2>/dev/null)
