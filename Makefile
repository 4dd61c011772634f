# pyprof: non-recursive build into build/. `make V=1` shows the commands.
.DELETE_ON_ERROR:
.SUFFIXES:

B	:= build
CC	?= gcc
CLANG	?= clang
BPFTOOL	?= bpftool
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
CFLAGS	+= $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -I$(B) -MMD -MP
SHIM_CFLAGS := -include preload/glibc_compat.h \
	-fPIC -fvisibility=hidden -fno-omit-frame-pointer \
	-ftls-model=initial-exec
LIBS	:= -llz4 -lncursesw -ltinfo -lbpf -lelf -lz -lm -lpthread
SHIM_LIBS := -ldl -lpthread -lm

ARCH	:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
# <asm/*.h> for libbpf's usdt.bpf.h (Debian multiarch)
BPF_INC	:= -I/usr/include/$(shell uname -m)-linux-gnu

# sources, by place on the data path
SHIM_SRCS	:= $(wildcard preload/*.c)
SHIM_OBJS	:= $(SHIM_SRCS:%.c=$(B)/%.o)
CORE_SRCS	:= $(filter-out collector/main.c,$(wildcard collector/*.c)) \
		   $(wildcard viewer/*.c)
CORE_OBJS	:= $(CORE_SRCS:%.c=$(B)/%.o)
BPF_SRCS	:= $(wildcard ebpf/*.bpf.c)
BPF_SKELS	:= $(BPF_SRCS:ebpf/%.bpf.c=$(B)/ebpf/%.skel.h)
UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
# what the CLI and the unit tests take from the shim (no interposers)
# (interpose.o and stallwrap.o define libc functions: never link them elsewhere)
SHIM_LIB_OBJS	:= $(filter-out $(B)/preload/interpose.o $(B)/preload/shim.o \
		   $(B)/preload/stallwrap.o,$(SHIM_OBJS))

.PHONY: all clean test demo setup install bench
all: $(B)/pyprof $(B)/libpyprof.so $(UNIT_BINS) $(B)/tests/pyembed3.11

setup:
	$(Q)./scripts/setup.sh

$(B)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/preload/%.o: preload/%.c preload/glibc_compat.h
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SHIM_CFLAGS) -c $< -o $@

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

$(B)/libppshim.a: $(SHIM_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/libppcore.a: $(CORE_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/pyprof: $(B)/collector/main.o $(B)/libppcore.a $(B)/libppshim.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $< -Wl,--start-group $(B)/libppcore.a $(B)/libppshim.a -Wl,--end-group -o $@ $(LIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libppcore.a $(B)/libppshim.a
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Icollector -Ipreload $< -Wl,--start-group $(B)/libppcore.a $(B)/libppshim.a -Wl,--end-group -o $@ $(LIBS) -lunwind -ldl

# A program embedding Debian's shared libpython3.11 (libpython3.11-dev),
# one of the interpreters under test (tests/interpreters). Debian's own
# python3.11-config: not a pyenv one earlier in PATH.
PY311_CONFIG ?= /usr/bin/python3.11-config
$(B)/tests/pyembed3.11: tests/embed/pyembed.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -g $$($(PY311_CONFIG) --includes) $< -o $@ \
		$$($(PY311_CONFIG) --embed --ldflags)

# eBPF: vmlinux.h from the running kernel's BTF, .bpf.c -> .bpf.o -> .skel.h
$(B)/vmlinux.h:
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(B)/ebpf/%.bpf.o: ebpf/%.bpf.c $(B)/vmlinux.h $(wildcard include/*.h ebpf/*.h)
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -I$(B) $(BPF_INC) -c $< -o $@

$(B)/ebpf/%.skel.h: $(B)/ebpf/%.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# every core object may include a skeleton
$(CORE_OBJS) $(B)/collector/main.o: $(BPF_SKELS)

test: all
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
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
