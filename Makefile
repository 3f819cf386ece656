# nnlua -- `make` builds everything, `make test` runs every suite.
# On a fresh Debian 12 the first build installs the packages it needs.

CC ?= cc
LUA_PC := lua5.4
DEBS := lua5.4 liblua5.4-dev libopenblas-dev libopenblas0-openmp lua-busted lua-argparse \
        lua-cjson libedit-dev pkg-config dataset-fashion-mnist fortunes \
        wordnet-base luarocks openmpi-bin libopenmpi-dev libdnnl-dev \
        libpng-dev libvorbis-dev
# what some tests drive (a pty for the REPL, a real Lua host); when they
# cannot be installed those tests are skipped and say why
TEST_DEBS := tmux lighttpd lighttpd-modules-lua curl

WARN := -Wall -Wextra \
        -Wshadow \
        -Wmissing-prototypes \
        -Wstrict-prototypes
OPT ?= -O3
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -fPIC -fopenmp -fno-math-errno -ffp-contract=fast $(WARN) $(OPT) -g
NN_FLAGS_STR = $(CC) $(OPT) -fopenmp $(EXTRA)
CFLAGS = $(CFLAGS_BASE) -DNN_BUILD_FLAGS='"$(NN_FLAGS_STR)"' $(EXTRA)
LUA_CFLAGS = $(shell pkg-config --cflags $(LUA_PC) 2>/dev/null)
LUA_LIBS = $(shell pkg-config --libs $(LUA_PC) 2>/dev/null)
EDIT_CFLAGS = $(shell pkg-config --cflags libedit 2>/dev/null)
EDIT_LIBS = $(shell pkg-config --libs libedit 2>/dev/null)
# MPI (engine/dist) when Open MPI is there, unless MPI=0; evaluated when
# used, so after the first build has installed it
MPI ?= 1
MPI_LIBS = $(if $(filter 1,$(MPI)),$(shell pkg-config --libs ompi-c 2>/dev/null))
MPI_DEFS = $(if $(MPI_LIBS),-DNN_HAVE_MPI $(shell pkg-config --cflags ompi-c 2>/dev/null))
# oneDNN for conv2d (engine/nn/conv_dnnl.c) when it is there, unless DNNL=0
DNNL ?= 1
DNNL_LIBS = $(if $(filter 1,$(DNNL)),$(if $(wildcard /usr/include/dnnl.h),-ldnnl))
DNNL_DEFS = $(if $(DNNL_LIBS),-DNN_HAVE_DNNL)
# PNG and Ogg Vorbis readers (engine/io/image.c, audio.c)
MEDIA_LIBS = -lpng16 -lvorbisfile
LIBS = -fopenmp -lm -ldl -lpthread $(MEDIA_LIBS) $(MPI_LIBS) $(DNNL_LIBS) $(EXTRA)

BUILD ?= build
ENGINE_SRC := $(wildcard engine/*/*.c)
ENGINE_HDR := $(wildcard engine/*.h engine/*/*.h)
# the engine in layers, each folder including only its own and lower ones
ENGINE_INC := -Iengine -Iengine/core -Iengine/ops -Iengine/nn -Iengine/io -Iengine/dist
BIND_SRC := $(filter-out bindings/main.c,$(wildcard bindings/*.c))
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/%.o)
ENGINE_TESTS := $(patsubst tests/engine/%.c,$(BUILD)/tests/%,$(filter-out tests/engine/check.c,$(wildcard tests/engine/*.c)))

NNLUA ?= ./nnlua
MODULE ?= nnlua.so
VERSION := 0.1.0
PREFIX ?= /usr/local
LUA_LIBDIR ?= $(PREFIX)/lib/lua/5.4
LUA_SHAREDIR ?= $(PREFIX)/share/lua/5.4

.PHONY: all deps test asan asan-build fuzz fuzz-parsers tsan debug bench bench-json bench-deps quality loc clean train data-mt install uninstall install-rock

all: deps $(BUILD)/libnnengine.a $(BUILD)/libnnengine.so $(BUILD)/libnnlua.a \
     $(BUILD)/libnnlua.so $(MODULE) $(NNLUA) $(BUILD)/embed-host $(BUILD)/embed-threads

# The test-only packages: tried once; a failure is reported, not fatal.
$(BUILD)/.test-deps: | $(BUILD)/.deps
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing for the tests:$$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	  || echo "could not install$$missing: the tests that need them are skipped"; fi
	@touch $@

# Install the Debian packages we need, once, only when one is missing.
deps: $(BUILD)/.deps
$(BUILD)/.deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/engine/%.o: engine/%.c $(ENGINE_HDR) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ENGINE_INC) -c $< -o $@

$(BUILD)/engine/dist/dist.o: engine/dist/dist.c $(ENGINE_HDR) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_DEFS) $(ENGINE_INC) -c $< -o $@

$(BUILD)/engine/nn/conv_dnnl.o: engine/nn/conv_dnnl.c $(ENGINE_HDR) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DNNL_DEFS) $(ENGINE_INC) -c $< -o $@

$(BUILD)/bindings/%.o: bindings/%.c bindings/*.h $(ENGINE_HDR) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) $(EDIT_CFLAGS) $(ENGINE_INC) -c $< -o $@

$(BUILD)/libnnengine.a: $(ENGINE_OBJ)
	ar rcs $@ $^

$(BUILD)/libnnengine.so: $(ENGINE_OBJ)
	$(CC) -shared -Wl,-soname,libnnengine.so.0 -o $@ $^ $(LIBS)

# Engine + bindings for C hosts that bring their own Lua (nnlua.h).
$(BUILD)/libnnlua.a: $(ENGINE_OBJ) $(BIND_OBJ)
	ar rcs $@ $^

$(BUILD)/libnnlua.so: $(ENGINE_OBJ) $(BIND_OBJ)
	$(CC) -shared -Wl,-soname,libnnlua.so.0 -Wl,-z,nodelete -o $@ $^ $(LIBS)

# The embedding examples, run by the tests (threads: two lua_States in two
# host threads, also what `make tsan` runs).
$(BUILD)/embed-host: examples/embed/host.c $(BUILD)/libnnlua.a bindings/nnlua.h
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -Ibindings $< -o $@ $(BUILD)/libnnlua.a $(LUA_LIBS) $(LIBS)
$(BUILD)/embed-threads: examples/embed/threads.c $(BUILD)/libnnlua.a bindings/nnlua.h
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -Ibindings $< -o $@ $(BUILD)/libnnlua.a $(LUA_LIBS) $(LIBS)

# The Lua module: stock lua5.4 has the Lua core inside, so no -llua here.
# -z nodelete: lua_close unloads C modules, but libgomp's idle worker
# threads must not outlive the code they run.
$(MODULE): $(ENGINE_OBJ) $(BIND_OBJ)
	$(CC) -shared -Wl,-z,nodelete -o $@ $^ $(LIBS)

# The executable links Lua and exports its symbols for C modules (-Wl,-E).
$(NNLUA): $(BUILD)/bindings/main.o $(BIND_OBJ) $(ENGINE_OBJ)
	$(CC) -Wl,-E -o $@ $^ $(LUA_LIBS) $(EDIT_LIBS) $(LIBS)

$(BUILD)/tests/%: tests/engine/%.c tests/engine/check.c tests/engine/check.h $(BUILD)/libnnengine.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ENGINE_INC) -Itests/engine $< tests/engine/check.c -o $@ $(BUILD)/libnnengine.a $(LIBS)

# Every suite: the engine's C tests and the specs (in nnlua and in stock
# lua5.4), then the specs again and FUZZ_CALLS calls of the API fuzzer in
# the ASan/UBSan build; tests/run.sh sums them into one line.
FUZZ_CALLS ?= 100000
FUZZ_SEED ?= 1
test: all $(ENGINE_TESTS) asan-build $(BUILD)/.test-deps
	@ASAN=$(ASAN) ASAN_NNLUA=$(if $(ASAN),,build-asan/nnlua) FUZZ_CALLS=$(FUZZ_CALLS) \
	  FUZZ_SEED=$(FUZZ_SEED) sh tests/run.sh $(NNLUA) $(ENGINE_TESTS)

ASAN_MAKE = $(MAKE) BUILD=build-asan NNLUA=build-asan/nnlua MODULE=build-asan/nnlua.so \
  OPT="-O1 -fno-omit-frame-pointer" EXTRA="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

# The ASan/UBSan build (what `make test` runs the specs and the fuzzer in).
asan-build: deps
	@mkdir -p build-asan && $(ASAN_MAKE) all > build-asan/build.log 2>&1 || { cat build-asan/build.log; exit 1; }

# Every suite, the engine's C tests included, through the ASan/UBSan build.
asan:
	$(ASAN_MAKE) test ASAN=1

# make fuzz [FUZZ_CALLS=N FUZZ_SEED=S]: the API fuzzer alone, under ASan/UBSan.
fuzz: asan-build
	sh tests/fuzz/run.sh build-asan/nnlua $(FUZZ_CALLS) $(FUZZ_SEED)

# ThreadSanitizer: two host threads, each with its own lua_State, training
# with 1 and 2 engine threads and saving (examples/embed/threads.c).
# -DNN_NO_DISPATCH: TSan cannot run the ifunc resolvers of target_clones.
tsan:
	$(MAKE) BUILD=build-tsan NNLUA=build-tsan/nnlua MODULE=build-tsan/nnlua.so \
	  OPT="-O1 -fno-omit-frame-pointer" EXTRA="-fsanitize=thread -DNN_NO_DISPATCH" \
	  build-tsan/embed-threads
	@dir=$$(mktemp -d) && TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
	  build-tsan/embed-threads $$dir 2 && rm -rf $$dir && echo "tsan: clean"

# libFuzzer targets for the file readers (tests/fuzz/parsers/target.c), built
# with clang into build-fuzz: make fuzz-parsers [SECONDS=N] runs each for N
# seconds from its committed seed corpus (tests/fuzz/corpus/NAME), keeping
# what it finds in build-fuzz/corpus/NAME.
FUZZ_PARSERS := safetensors idx bpe char triples jsonl csv png audio
FUZZ_DEBS := clang libclang-rt-14-dev libomp-14-dev
SECONDS ?= 60
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz-parsers: $(FUZZ_PARSERS:%=build-fuzz/fuzz-%)
	@for t in $(FUZZ_PARSERS); do mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz-parsers: $$t for $(SECONDS) s"; \
	  ASAN_OPTIONS=allocator_may_return_null=1 build-fuzz/fuzz-$$t -max_total_time=$(SECONDS) \
	    -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 build-fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    2> build-fuzz/fuzz-$$t.log || { tail -40 build-fuzz/fuzz-$$t.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' build-fuzz/fuzz-$$t.log | tail -2; done

# (a stamp: with BUILD=build-fuzz the sub-make's own rule builds the library)
build-fuzz/.lib: $(ENGINE_SRC) $(BIND_SRC) $(ENGINE_HDR) $(wildcard bindings/*.h)
	@for p in $(FUZZ_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; fi
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -fno-omit-frame-pointer" EXTRA="$(FUZZ_SAN)" \
	  build-fuzz/.deps build-fuzz/libnnlua.a
	touch $@

build-fuzz/fuzz-%: tests/fuzz/parsers/target.c build-fuzz/.lib
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	  -DFUZZ_$$(echo $* | tr a-z A-Z) -DNNLUA_LUA_DIR='"$(CURDIR)/lua"' $(LUA_CFLAGS) $(ENGINE_INC) -Ibindings \
	  $< -o $@ build-fuzz/libnnlua.a $(LUA_LIBS) -fopenmp -lm -ldl -lpthread $(MEDIA_LIBS) $(MPI_LIBS) $(DNNL_LIBS)

# Debug build: no optimisation, engine invariants asserted, and a full
# garbage collection after every tensor allocation (as Lua's own hard
# memory tests do) so a missing reference shows up at once.
debug:
	$(MAKE) BUILD=build-debug NNLUA=build-debug/nnlua MODULE=build-debug/nnlua.so \
	  OPT="-O0" EXTRA="-DNN_DEBUG -DNNL_GC_STRESS" test

# the PyTorch side of the benchmarks (never a dependency of the engine or the tests)
BENCH_DEBS := python3-torch time
bench-deps:
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing for the benchmarks:$$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	  || echo "could not install$$missing: the PyTorch columns stay empty"; fi

# every script's rows also go to $(BENCH_ROWS); bench/summary.lua prints
# them as one table at the end and writes $(BENCH_JSON) (make bench-json
# prints that file)
BENCH_ROWS ?= $(BUILD)/bench-rows.jsonl
BENCH_JSON ?= $(BUILD)/bench.json
bench: export NNLUA_BENCH_ROWS = $(abspath $(BENCH_ROWS))
bench: all bench-deps
	rm -f $(BENCH_ROWS)
	$(NNLUA) bench/matmul.lua
	$(NNLUA) bench/dispatch.lua
	$(NNLUA) bench/contention.lua
	$(NNLUA) bench/fashion_mnist.lua
	$(NNLUA) bench/gpt_step.lua
	$(NNLUA) bench/gpt_memory.lua
	$(NNLUA) bench/gpt_memory.lua --checkpoint
	$(NNLUA) bench/vit_step.lua
	$(NNLUA) bench/resnet_step.lua
	$(NNLUA) bench/lstm_step.lua
	$(NNLUA) bench/kge_step.lua
	$(NNLUA) bench/generate.lua
	$(NNLUA) bench/tokenize.lua
	$(NNLUA) bench/dataloader.lua
	$(NNLUA) bench/dist.lua
	$(NNLUA) bench/summary.lua $(BENCH_ROWS) $(BENCH_JSON)

bench-json: bench
	@cat $(BENCH_JSON)

# The main job: a real training run on data a fresh machine installs.
# The README's quality figure: the baby GPT over 3 seeds in nnlua and in
# its PyTorch twin (about 20 minutes on 2 cores), then both engines from the
# same weights and batches.
quality: all
	$(NNLUA) bench/quality.lua
	$(NNLUA) bench/quality.lua --paired --seeds 2

train: all
	$(NNLUA) examples/gpt/train.lua --force  # retrains and replaces gpt.safetensors

# Translation and summarisation data from the Debian archive (apt-get
# fetches the Description Translation Project's files into DDTP_CACHE; the
# examples do this themselves when it is missing).
DDTP_CACHE ?= data/ddtp
data-mt: all
	$(NNLUA) examples/mt/prepare.lua --cache $(DDTP_CACHE)

# make install [PREFIX=/usr/local] [DESTDIR=...]: the executable, libraries
# with sonames, the Lua module and files where stock lua5.4 looks, headers,
# pkg-config file and man page.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/nnlua $(DESTDIR)$(LUA_LIBDIR) \
	  $(DESTDIR)$(LUA_SHAREDIR)/nnlua $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(NNLUA) $(DESTDIR)$(PREFIX)/bin/nnlua
	install -m 644 $(BUILD)/libnnengine.a $(BUILD)/libnnlua.a $(DESTDIR)$(PREFIX)/lib/
	for l in nnengine nnlua; do \
	  install -m 755 $(BUILD)/lib$$l.so $(DESTDIR)$(PREFIX)/lib/lib$$l.so.$(VERSION); \
	  ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/lib$$l.so.0; \
	  ln -sf lib$$l.so.0 $(DESTDIR)$(PREFIX)/lib/lib$$l.so; done
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/nnlua.so
	install -m 644 lua/nnlua.lua $(DESTDIR)$(LUA_SHAREDIR)/
	install -m 644 lua/nnlua/*.lua $(DESTDIR)$(LUA_SHAREDIR)/nnlua/
	install -m 644 engine/nn.h engine/core/nn_tensor.h engine/ops/nn_ops.h engine/nn/nn_layers.h \
	  engine/io/nn_io.h engine/dist/nn_dist.h engine/ops/nn_unary_ops.h bindings/nnlua.h $(DESTDIR)$(PREFIX)/include/nnlua/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@MPI_LIBS@|$(MEDIA_LIBS) $(MPI_LIBS) $(DNNL_LIBS)|' docs/nnlua.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nnlua.pc
	install -m 644 docs/nnlua.1 $(DESTDIR)$(PREFIX)/share/man/man1/nnlua.1
	@# the dynamic linker's cache, so hosts linked with -lnnlua start (not for staged installs)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

# What `luarocks make` installs: the module and the Lua files into the
# rock's tree (LUA_LIBDIR, LUA_SHAREDIR), and the nnlua executable.
install-rock: all
	install -d $(DESTDIR)$(LUA_LIBDIR) $(DESTDIR)$(LUA_SHAREDIR)/nnlua $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/nnlua.so
	install -m 644 lua/nnlua.lua $(DESTDIR)$(LUA_SHAREDIR)/
	install -m 644 lua/nnlua/*.lua $(DESTDIR)$(LUA_SHAREDIR)/nnlua/
	install -m 755 $(NNLUA) $(DESTDIR)$(PREFIX)/bin/nnlua

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/nnlua $(DESTDIR)$(PREFIX)/lib/libnnengine.* $(DESTDIR)$(LUA_SHAREDIR)/nnlua.lua \
	  $(DESTDIR)$(PREFIX)/lib/libnnlua.* $(DESTDIR)$(LUA_LIBDIR)/nnlua.so \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/nnlua.pc $(DESTDIR)$(PREFIX)/share/man/man1/nnlua.1
	rm -rf $(DESTDIR)$(LUA_SHAREDIR)/nnlua $(DESTDIR)$(PREFIX)/include/nnlua
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

loc:
	@for d in engine bindings lua tests bench examples; do \
	  [ -d $$d ] && printf "%-10s %6d\n" $$d "$$(cat $$(find $$d -name '*.c' -o -name '*.h' -o -name '*.lua' -o -name '*.py' -o -name '*.sh') 2>/dev/null | wc -l)"; done; true

clean:
	rm -rf build build-asan build-tsan build-debug build-fuzz nnlua nnlua.so
