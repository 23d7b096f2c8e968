# Build the four steps and the client; run the tests.
# `make` builds everything; `make step3` builds one step; `make test` runs the suite.
# CC and CFLAGS may be overridden (make CC=clang CFLAGS=-O0); the warnings stay on,
# and WERROR=-Werror turns them into errors (CI does that).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -pedantic -Wall -Wextra
WERROR  ?=
BATS    ?= bats

STEPS   := step1-single/server step2-loop/server step3-fork/server step4-reap/server
PROGS   := $(STEPS) client/client
TESTBIN := tests/peer tests/stuck tests/sigdefault tests/probe tests/designs
BENCHBIN := bench/loadgen bench/minfork bench/nullserver

.PHONY: all step1 step2 step3 step4 client test demo wire bench stress check mutants clean
.PHONY: exercises exercise grade grade-demo test-exercises prove-load

# Build all four servers and the client, and the programs the tests and
# the benchmarks use.
all: $(PROGS) $(TESTBIN) $(BENCHBIN)

# Build one step: `make step3`, then run ./step3-fork/server 5000.
step1: step1-single/server
step2: step2-loop/server
step3: step3-fork/server
step4: step4-reap/server

# Build the client: ./client/client localhost 5000.
client: client/client

# Every program is one self-contained .c file, built beside its source.
%: %.c
	$(CC) $(WARN) $(WERROR) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Run the bats test suite (builds first), in two lanes side by side
# (tests/run.sh): the tour, then the steps in order and the client, which show
# a broken program soonest; beside them the rest. In each lane the first
# failure stops the run: the rest of its file fails at once, naming it, and
# the files after it are not run. KEEP_GOING=1 runs every test, one file
# after another.
TESTS_FIRST := tests/demo.bats tests/step1-single.bats tests/step2-loop.bats \
               tests/step3-fork.bats tests/step4-reap.bats tests/client.bats \
               tests/framing.bats tests/misplaced-brace.bats
TESTS_REST := $(filter-out $(TESTS_FIRST),$(sort $(wildcard tests/*.bats)))
TESTS := $(TESTS_FIRST) $(TESTS_REST)
KEEP_GOING ?=
test: all $(TESTBIN)
	@command -v $(BATS) >/dev/null 2>&1 || { \
	  echo "make test needs bats-core, which is not installed."; \
	  echo "  Debian/Ubuntu: sudo apt-get install bats"; \
	  echo "  macOS:         brew install bats-core"; \
	  exit 1; }
ifneq ($(KEEP_GOING),)
	$(BATS) $(BATS_FLAGS) $(TESTS)
else
	@BATS='$(BATS)' BATS_FLAGS='$(BATS_FLAGS)' tests/run.sh $(TESTS_FIRST) -- $(TESTS_REST)
endif

# A narrated, unattended tour of the four steps, in under a minute. It needs
# only the four servers and the client. DEMO_PAUSE=3 make demo: a slower tour.
demo: $(PROGS)
	./demo.sh

# The TCP segments of each lesson, one line each, captured on a private
# loopback (Linux; tcpdump): `make wire`, `make wire SCENE=reset`, `make wire STEP=4`.
wire: $(PROGS) tests/peer
	@STEP='$(or $(STEP),1)' ./wire.sh $(SCENE)

# Numbers: connection rates, one silent client, memory per connection.
# Writes build/bench/results.md; bench/results.md is the reference run, kept in git.
bench: all $(BENCHBIN)
	CC='$(CC)' CFLAGS='$(CFLAGS)' WARN='$(WARN)' bench/bench.sh

# Both take their listening socket from one header.
bench/minfork bench/nullserver: bench/listener.h

# The load generator runs its connections in POSIX threads.
bench/loadgen: LDLIBS += -pthread

# The claims about a thread per client start threads.
tests/designs: LDLIBS += -pthread

# Tens of thousands of connections through step4, with assertions.
stress: all bench/loadgen
	bench/stress.sh

# Small, realistic bugs put in on purpose: each must make its test fail, and
# make test fail within 90 s (MUTANTS="3 13" runs only those); then every
# wrong solution in tests/wrong-solutions must fail its lesson's test.
mutants: all
	tests/mutants.sh
	@$(EXENV) exercises/lib/prove.sh wrong-all

# The suite under AddressSanitizer and UBSan, valgrind, cppcheck, clang-tidy.
check: all $(TESTBIN)
	tests/check.sh

# The classroom exercises (exercises/README.md). `make exercises` lists them
# with their status; `make exercise EX=03` builds exercises/03-*/server.c (or
# client.c) with the warnings as errors (EX_WERROR= lets warnings through)
# and runs its checker; `make grade SUBMISSIONS=DIR` grades a class, JOBS
# runs at a time (GRADE_JOBS; three times the processors by default). Both build
# first whatever the checkers name from the repository (the client, step 2's
# server, ...).
EX_WERROR ?= -Werror
EXENV = CC='$(CC)' CFLAGS='$(CFLAGS)' WARN='$(WARN)' EX_WERROR='$(EX_WERROR)' BATS='$(BATS)' MAKE='$(MAKE)'
exercises:
	@exercises/lib/exercise.sh list
exercise:
	@$(EXENV) exercises/lib/exercise.sh check '$(EX)'
grade:
	@$(EXENV) $(if $(JOBS),GRADE_JOBS='$(JOBS)') $(if $(EX),GRADE_EXERCISES='$(EX)') exercises/lib/grade.sh '$(SUBMISSIONS)'

# A made-up class (DEMO_STUDENTS=30 students x every exercise, two thirds
# correct, a few hostile), graded by make grade, with the time it took and
# the machine's load: the timing in exercises/TEACHING.md, repeatable.
grade-demo:
	@$(EXENV) $(if $(JOBS),GRADE_JOBS='$(JOBS)') $(if $(EX),DEMO_EXERCISES='$(EX)') exercises/lib/grade-demo.sh

# Every exercise's checker proven both ways (fails on the starter, passes on
# the reference and second solutions), make exercise as a student meets it,
# and make grade against hostile submissions: tests/exercises/, the two files
# side by side (make grade's part is mostly waiting), under two minutes on a
# 2-core machine, so not in make test. The wrong solutions are make mutants'.
test-exercises: all
	@mkdir -p build/test-exercises
	@$(BATS) $(BATS_FLAGS) tests/exercises/grade.bats >build/test-exercises/grade.out 2>&1 </dev/null & grade=$$!; \
	  status=0; $(BATS) $(BATS_FLAGS) tests/exercises/exercises.bats || status=$$?; \
	  wait $$grade || status=$$?; cat build/test-exercises/grade.out; exit $$status

# Every reference and second solution passes its checker RUNS times in a row
# (20 by default) while two CPU hogs spin beside it: load must never fail a
# correct program. Many minutes, so a target of its own.
RUNS ?= 20
prove-load: all
	@$(EXENV) exercises/lib/prove.sh load $(RUNS)

# Remove everything the build made.
clean:
	rm -f $(PROGS) $(TESTBIN) $(BENCHBIN)
	rm -rf build
