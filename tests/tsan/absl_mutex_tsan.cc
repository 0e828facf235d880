// Makes absl::Mutex visible to ThreadSanitizer under --config=tsan.
//
// Debian's libabsl_synchronization is not built with -fsanitize=thread, so
// its Mutex carries no TSan annotations: TSan sees neither lock nor unlock,
// and every access our code guards with an absl::Mutex looks like a race.
// This file defines the Mutex and CondVar entry points in the executable
// itself (the linker exports them, so calls from our shared libraries and
// from Abseil's own PLT land here too), calls the library's definition
// (dlsym RTLD_NEXT) and tells TSan what happened (lock acquired/released;
// Await and CondVar::Wait release and re-acquire). Linked only into
// --config=tsan binaries (.bazelrc --custom_malloc).

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"

extern "C" {
void AnnotateRWLockAcquired(const char* file, int line, const volatile void* lock, long is_w);
void AnnotateRWLockReleased(const char* file, int line, const volatile void* lock, long is_w);
}

namespace {

void* Real(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_mutex_tsan: %s not found (%s)\n", mangled, dlerror());
    std::abort();
  }
  return fn;
}

template <typename Fn>
Fn Resolve(const char* mangled) {
  return reinterpret_cast<Fn>(Real(mangled));
}

// Abseil's entry points call each other (AwaitWithTimeout calls
// AwaitWithDeadline through the PLT, so into this file again): only the
// outermost call on a thread is annotated.
thread_local int depth = 0;
struct Outer {
  Outer() : outer(depth++ == 0) {}
  ~Outer() { --depth; }
  const bool outer;
};

void Acquired(const Outer& o, const void* mu, bool writer) {
  if (o.outer) AnnotateRWLockAcquired(__FILE__, __LINE__, mu, writer);
}
void Released(const Outer& o, const void* mu, bool writer) {
  if (o.outer) AnnotateRWLockReleased(__FILE__, __LINE__, mu, writer);
}

// Abseil evaluates a waiter's Condition inside the Mutex call, and not only
// on the waiter's thread: Unlock evaluates every waiter's condition to decide
// whom to wake. There TSan already considers the mutex released (Released
// runs before the real Unlock), so what the condition reads looks unordered
// with what the waiter does after it wakes, e.g. freeing the state the
// condition read or reusing the stack the condition's lambda lived on.
// Abseil's own TSan build pretends to hold the lock around each evaluation
// (EvalConditionAnnotated); so does this wrapper, passed to the library in
// place of the caller's condition. It lives in the waiter's frame, which
// outlasts every evaluation of it.
// Held in the mode of the wait (shared only for ReaderLockWhen), as Abseil
// evaluates it.
struct AnnotatedCondition {
  const absl::Condition* cond;
  const void* mu;
  long writer;
  static bool Eval(AnnotatedCondition* self) {
    AnnotateRWLockAcquired(__FILE__, __LINE__, self->mu, self->writer);
    const bool result = self->cond->Eval();
    AnnotateRWLockReleased(__FILE__, __LINE__, self->mu, self->writer);
    return result;
  }
};

// The condition to hand to the library: the wrapper for the outermost call,
// the caller's own (already wrapped) for nested ones.
class ConditionFor {
 public:
  ConditionFor(const Outer& o, const absl::Condition& cond, const void* mu, bool writer = true)
      : wrapper_{&cond, mu, writer ? 1 : 0},
        wrapped_(&AnnotatedCondition::Eval, &wrapper_),
        use_(o.outer ? &wrapped_ : &cond) {}
  const absl::Condition& get() const { return *use_; }

 private:
  AnnotatedCondition wrapper_;
  absl::Condition wrapped_;
  const absl::Condition* use_;
};

#define ABSL_MUTEX_SYMBOL(name) "_ZN4absl7debian35Mutex" name
#define ABSL_CONDVAR_SYMBOL(name) "_ZN4absl7debian37CondVar" name

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  const Outer o;
  static auto real = Resolve<void (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("4LockEv"));
  real(this);
  Acquired(o, this, true);
}

void Mutex::Unlock() {
  const Outer o;
  static auto real = Resolve<void (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("6UnlockEv"));
  Released(o, this, true);
  real(this);
}

void Mutex::ReaderLock() {
  const Outer o;
  static auto real = Resolve<void (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("10ReaderLockEv"));
  real(this);
  Acquired(o, this, false);
}

void Mutex::ReaderUnlock() {
  const Outer o;
  static auto real = Resolve<void (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("12ReaderUnlockEv"));
  Released(o, this, false);
  real(this);
}

bool Mutex::TryLock() {
  const Outer o;
  static auto real = Resolve<bool (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("7TryLockEv"));
  const bool locked = real(this);
  if (locked) Acquired(o, this, true);
  return locked;
}

bool Mutex::ReaderTryLock() {
  const Outer o;
  static auto real = Resolve<bool (*)(Mutex*)>(ABSL_MUTEX_SYMBOL("13ReaderTryLockEv"));
  const bool locked = real(this);
  if (locked) Acquired(o, this, false);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real =
      Resolve<void (*)(Mutex*, const Condition&)>(ABSL_MUTEX_SYMBOL("8LockWhenERKNS0_9ConditionE"));
  real(this, c.get());
  Acquired(o, this, true);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real = Resolve<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      ABSL_MUTEX_SYMBOL("19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  const bool result = real(this, c.get(), timeout);
  Acquired(o, this, true);  // held on return either way
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real = Resolve<bool (*)(Mutex*, const Condition&, absl::Time)>(
      ABSL_MUTEX_SYMBOL("20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  const bool result = real(this, c.get(), deadline);
  Acquired(o, this, true);
  return result;
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  const Outer o;
  const ConditionFor c(o, cond, this, /*writer=*/false);
  static auto real = Resolve<void (*)(Mutex*, const Condition&)>(
      ABSL_MUTEX_SYMBOL("14ReaderLockWhenERKNS0_9ConditionE"));
  real(this, c.get());
  Acquired(o, this, false);
}

void Mutex::Await(const Condition& cond) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real =
      Resolve<void (*)(Mutex*, const Condition&)>(ABSL_MUTEX_SYMBOL("5AwaitERKNS0_9ConditionE"));
  Released(o, this, true);
  real(this, c.get());
  Acquired(o, this, true);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real = Resolve<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      ABSL_MUTEX_SYMBOL("16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  Released(o, this, true);
  const bool result = real(this, c.get(), timeout);
  Acquired(o, this, true);
  return result;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  const Outer o;
  const ConditionFor c(o, cond, this);
  static auto real = Resolve<bool (*)(Mutex*, const Condition&, absl::Time)>(
      ABSL_MUTEX_SYMBOL("17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  Released(o, this, true);
  const bool result = real(this, c.get(), deadline);
  Acquired(o, this, true);
  return result;
}

void CondVar::Wait(Mutex* mu) {
  const Outer o;
  static auto real = Resolve<void (*)(CondVar*, Mutex*)>(ABSL_CONDVAR_SYMBOL("4WaitEPNS0_5MutexE"));
  Released(o, mu, true);
  real(this, mu);
  Acquired(o, mu, true);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  const Outer o;
  static auto real = Resolve<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      ABSL_CONDVAR_SYMBOL("15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE"));
  Released(o, mu, true);
  const bool result = real(this, mu, timeout);
  Acquired(o, mu, true);
  return result;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  const Outer o;
  static auto real = Resolve<bool (*)(CondVar*, Mutex*, absl::Time)>(
      ABSL_CONDVAR_SYMBOL("16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE"));
  Released(o, mu, true);
  const bool result = real(this, mu, deadline);
  Acquired(o, mu, true);
  return result;
}

ABSL_NAMESPACE_END
}  // namespace absl
