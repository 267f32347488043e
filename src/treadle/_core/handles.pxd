# C declarations for handles.py (Cython's pure Python mode: the .py is the source).
#
# Handle and TimerHandle stay Python classes (subclasses of asyncio's), so the
# hot path reaches their slots directly: each slot of a class with __slots__ is
# a member descriptor holding the slot's byte offset in the instance.  The
# offsets are read from those descriptors once, at import, and only used if
# every one is a plain, writable object slot (T_OBJECT_EX) inside the instance;
# otherwise treadle_handle_slots_init returns 0 and handles.py takes the
# ordinary path.  Nothing here guesses a layout.

cdef extern from *:
    """
    #include <structmember.h>

    #define TREADLE_SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))
    /* Into a fresh instance's empty slot: a new reference to value. */
    #define TREADLE_FILL(obj, off, value) do { Py_INCREF(value); TREADLE_SLOT(obj, off) = (value); } while (0)

    static PyTypeObject *treadle_handle_type = NULL;
    static PyTypeObject *treadle_timer_type = NULL;
    static Py_ssize_t treadle_off_context, treadle_off_loop, treadle_off_callback,
        treadle_off_args, treadle_off_cancelled, treadle_off_repr, treadle_off_traceback,
        treadle_off_when, treadle_off_seq, treadle_off_scheduled;

    /* The offset of slot `name` of `type`; 0 if it is not a plain writable
       object slot within the instance; -1 with an exception on error. */
    static CYTHON_INLINE Py_ssize_t treadle_slot_offset(PyTypeObject *type, const char *name) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
        Py_ssize_t offset = 0;
        if (descr == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();  /* no such slot: the ordinary path */
            return 0;
        }
        if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            if (member->type == T_OBJECT_EX && !(member->flags & READONLY)
                    && member->offset >= (Py_ssize_t)sizeof(PyObject)
                    && member->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize)
                offset = member->offset;
        }
        Py_DECREF(descr);
        return offset;
    }

    /* 1: the offsets are known and the fast path is on; 0: it is off. */
    static CYTHON_INLINE int treadle_handle_slots_init(PyObject *handle_type, PyObject *timer_type) {
        static const char *names[] = {"_context", "_loop", "_callback", "_args", "_cancelled",
                                      "_repr", "_source_traceback", "_when", "_seq", "_scheduled"};
        Py_ssize_t *offsets[] = {&treadle_off_context, &treadle_off_loop, &treadle_off_callback,
                                 &treadle_off_args, &treadle_off_cancelled, &treadle_off_repr,
                                 &treadle_off_traceback, &treadle_off_when, &treadle_off_seq,
                                 &treadle_off_scheduled};
        PyTypeObject *handle = (PyTypeObject *)handle_type, *timer = (PyTypeObject *)timer_type;
        int i;
        if (!PyType_Check(handle_type) || !PyType_Check(timer_type)
                || !PyType_IsSubtype(timer, handle)
                || handle->tp_alloc != PyType_GenericAlloc || timer->tp_alloc != PyType_GenericAlloc)
            return 0;
        for (i = 0; i < 10; i++) {
            /* The first seven are Handle's: they must be where the timer has them too. */
            Py_ssize_t offset = treadle_slot_offset(i < 7 ? handle : timer, names[i]);
            if (offset <= 0)
                return (int)offset;
            if (i < 7 && treadle_slot_offset(timer, names[i]) != offset)
                return PyErr_Occurred() ? -1 : 0;
            *offsets[i] = offset;
        }
        Py_INCREF(handle_type);
        Py_INCREF(timer_type);
        treadle_handle_type = handle;
        treadle_timer_type = timer;
        return 1;
    }

    /* A handle of `type` with its Handle slots set as Handle.__init__ sets
       them; the slots of a fresh instance are NULL, so nothing is released. */
    static CYTHON_INLINE PyObject *treadle_alloc_handle(PyTypeObject *type, PyObject *callback, PyObject *args,
                                          PyObject *loop, PyObject *context, PyObject *traceback) {
        PyObject *handle;
        if (context == Py_None) {
            context = PyContext_CopyCurrent();
            if (context == NULL)
                return NULL;
        } else {
            Py_INCREF(context);
        }
        handle = type->tp_alloc(type, 0);
        if (handle == NULL) {
            Py_DECREF(context);
            return NULL;
        }
        TREADLE_SLOT(handle, treadle_off_context) = context;  /* the reference taken above */
        TREADLE_FILL(handle, treadle_off_loop, loop);
        TREADLE_FILL(handle, treadle_off_callback, callback);
        TREADLE_FILL(handle, treadle_off_args, args);
        TREADLE_FILL(handle, treadle_off_cancelled, Py_False);
        TREADLE_FILL(handle, treadle_off_repr, Py_None);
        TREADLE_FILL(handle, treadle_off_traceback, traceback);
        return handle;
    }

    static CYTHON_INLINE PyObject *treadle_new_handle(PyObject *callback, PyObject *args, PyObject *loop,
                                        PyObject *context, PyObject *traceback) {
        return treadle_alloc_handle(treadle_handle_type, callback, args, loop, context, traceback);
    }

    static CYTHON_INLINE PyObject *treadle_new_timer(PyObject *when, PyObject *seq, PyObject *callback,
                                       PyObject *args, PyObject *loop, PyObject *context,
                                       PyObject *traceback) {
        PyObject *timer = treadle_alloc_handle(treadle_timer_type, callback, args, loop, context,
                                               traceback);
        if (timer == NULL)
            return NULL;
        TREADLE_FILL(timer, treadle_off_when, when);
        TREADLE_FILL(timer, treadle_off_seq, seq);
        TREADLE_FILL(timer, treadle_off_scheduled, Py_True);
        return timer;
    }

    /* The collector's traverse of the two classes.  Python gives a class
       with __slots__ subtype_traverse, which walks the member table of every
       class up the chain on each call; this visits the same object slots
       from one array of offsets made at import, and only the values that
       the collector tracks.  (Collections traverse every handle alive,
       several times over its life.) */
    #define TREADLE_MAX_TRAVERSED 32
    static Py_ssize_t treadle_trav_handle[TREADLE_MAX_TRAVERSED], treadle_trav_timer[TREADLE_MAX_TRAVERSED];
    static int treadle_ntrav_handle = 0, treadle_ntrav_timer = 0;

    /* The offsets of every object slot that `type`'s own traverse visits,
       walking up while the traverse is `generic` (subtype_traverse).  1; 0
       if the chain holds something else than object slots (a __dict__, a
       base with a traverse of its own, too many slots). */
    static int treadle_collect_slots(PyTypeObject *type, traverseproc generic, Py_ssize_t *out, int *n) {
        PyTypeObject *base = type;
        *n = 0;
        if (type->tp_dictoffset != 0 || (type->tp_flags & Py_TPFLAGS_MANAGED_DICT))
            return 0;
        while (base != NULL && base->tp_traverse == generic) {
            /* A class made by a class statement: its slots are its members. */
            PyMemberDef *member = base->tp_members;
            if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE))
                return 0;
            for (; member != NULL && member->name != NULL; member++) {
                if (member->type != T_OBJECT_EX)
                    continue;
                if (*n == TREADLE_MAX_TRAVERSED)
                    return 0;
                out[(*n)++] = member->offset;
            }
            base = base->tp_base;
        }
        /* What is left must have nothing to traverse: object itself. */
        return base != NULL && base->tp_traverse == NULL && base->tp_dictoffset == 0;
    }

    static int treadle_handle_traverse(PyObject *self, visitproc visit, void *arg) {
        PyTypeObject *type = Py_TYPE(self);
        const Py_ssize_t *offsets = treadle_trav_handle;
        int i, n = treadle_ntrav_handle;
        /* A subclass's own traverse visits its own slots, then calls this
           with the instance: the slots are those of whichever class it extends. */
        if (type == treadle_timer_type || (type != treadle_handle_type && PyType_IsSubtype(type, treadle_timer_type))) {
            offsets = treadle_trav_timer;
            n = treadle_ntrav_timer;
        }
        for (i = 0; i < n; i++) {
            PyObject *value = TREADLE_SLOT(self, offsets[i]);
            /* Only what the collector tracks: it passes over anything else
               (None, a bool, the deadline), which cannot be part of a cycle. */
            if (value != NULL && PyType_IS_GC(Py_TYPE(value))) {
                int err = visit(value, arg);
                if (err)
                    return err;
            }
        }
        Py_VISIT(type);  /* an instance of a heap type holds its type, as subtype_traverse says */
        return 0;
    }

    /* The same visits, unrolled, when the classes' object slots are exactly
       the ten that treadle_handle_slots_init found by name (asyncio's
       Handle and TimerHandle, and treadle's _seq): the collector calls a
       traverse about ten times over a callback's life, and the loop over
       the array cost half of each call. */
    #define TREADLE_VISIT_SLOT(off) do { \
            PyObject *value_ = TREADLE_SLOT(self, (off)); \
            if (value_ != NULL && PyType_IS_GC(Py_TYPE(value_))) { \
                int err_ = visit(value_, arg); \
                if (err_) \
                    return err_; \
            } \
        } while (0)

    static PyObject *treadle_empty_tuple = NULL;  /* () of a callback without arguments: never part of a cycle */

    static int treadle_handle_traverse_named(PyObject *self, visitproc visit, void *arg) {
        PyTypeObject *type = Py_TYPE(self);
        TREADLE_VISIT_SLOT(treadle_off_loop);
        TREADLE_VISIT_SLOT(treadle_off_callback);
        if (TREADLE_SLOT(self, treadle_off_args) != treadle_empty_tuple)
            TREADLE_VISIT_SLOT(treadle_off_args);
        TREADLE_VISIT_SLOT(treadle_off_context);
        TREADLE_VISIT_SLOT(treadle_off_cancelled);
        TREADLE_VISIT_SLOT(treadle_off_repr);
        TREADLE_VISIT_SLOT(treadle_off_traceback);
        if (type == treadle_timer_type || (type != treadle_handle_type && PyType_IsSubtype(type, treadle_timer_type))) {
            TREADLE_VISIT_SLOT(treadle_off_when);
            TREADLE_VISIT_SLOT(treadle_off_seq);
            TREADLE_VISIT_SLOT(treadle_off_scheduled);
        }
        Py_VISIT(type);
        return 0;
    }

    /* 1 if the n offsets of `found` are those of `named`, in any order. */
    static int treadle_same_offsets(const Py_ssize_t *found, int n, const Py_ssize_t *named, int n_named) {
        int i, j;
        if (n != n_named)
            return 0;
        for (i = 0; i < n; i++) {
            for (j = 0; j < n_named && named[j] != found[i]; j++)
                ;
            if (j == n_named)
                return 0;
            for (j = 0; j < i; j++)
                if (found[j] == found[i])
                    return 0;
        }
        return 1;
    }

    /* After treadle_handle_slots_init: 1 if the two classes now use one of
       the traverses above, 0 if they keep Python's. */
    static int treadle_handle_traverse_init(void) {
        PyTypeObject *handle = treadle_handle_type, *timer = treadle_timer_type;
        traverseproc generic, ours = treadle_handle_traverse;
        Py_ssize_t named[10];
        if (handle == NULL || timer == NULL)
            return 0;
        generic = handle->tp_traverse;
        if (generic == NULL || timer->tp_traverse != generic
                || !treadle_collect_slots(handle, generic, treadle_trav_handle, &treadle_ntrav_handle)
                || !treadle_collect_slots(timer, generic, treadle_trav_timer, &treadle_ntrav_timer))
            return 0;
        named[0] = treadle_off_loop; named[1] = treadle_off_callback; named[2] = treadle_off_args;
        named[3] = treadle_off_context; named[4] = treadle_off_cancelled; named[5] = treadle_off_repr;
        named[6] = treadle_off_traceback; named[7] = treadle_off_when; named[8] = treadle_off_seq;
        named[9] = treadle_off_scheduled;
        if (treadle_empty_tuple == NULL)
            treadle_empty_tuple = PyTuple_New(0);  /* the interpreter's one (), kept */
        if (treadle_empty_tuple != NULL
                && treadle_same_offsets(treadle_trav_handle, treadle_ntrav_handle, named, 7)
                && treadle_same_offsets(treadle_trav_timer, treadle_ntrav_timer, named, 10))
            ours = treadle_handle_traverse_named;
        else if (treadle_empty_tuple == NULL)
            PyErr_Clear();  /* no (): the loop over the offsets does it all */
        handle->tp_traverse = ours;
        timer->tp_traverse = ours;
        return 1;
    }

    /* The deallocator of the two classes.  Python's (subtype_dealloc) walks
       the class chain and each class's member table to clear the slots; this
       does the same steps from the offsets that the traverse uses.  A
       subclass's own subtype_dealloc calls it as its base's deallocator,
       after finalizing the instance and clearing the subclass's own slots:
       what is left is done as for an instance of ours.  Installed only with
       the traverse, and only if neither class has a finalizer. */
    static void treadle_handle_dealloc(PyObject *self) {
        PyTypeObject *type = Py_TYPE(self);
        const Py_ssize_t *offsets = treadle_trav_handle;
        int i, n = treadle_ntrav_handle;
        Py_ssize_t weaklist = type->tp_weaklistoffset;
        PyObject_GC_UnTrack(self);
        Py_TRASHCAN_BEGIN(self, treadle_handle_dealloc)
        if (type == treadle_timer_type || (type != treadle_handle_type && PyType_IsSubtype(type, treadle_timer_type))) {
            offsets = treadle_trav_timer;
            n = treadle_ntrav_timer;
        }
        if (weaklist > 0) {
            if (TREADLE_SLOT(self, weaklist) != NULL)
                PyObject_ClearWeakRefs(self);
        } else if (weaklist != 0) {
            PyObject_ClearWeakRefs(self);  /* kept before the object (3.12+): it looks itself */
        }
        for (i = 0; i < n; i++) {
            PyObject *value = TREADLE_SLOT(self, offsets[i]);
            if (value != NULL) {
                TREADLE_SLOT(self, offsets[i]) = NULL;
                Py_DECREF(value);
            }
        }
        type->tp_free(self);
        Py_DECREF(type);  /* an instance of a heap type holds its type */
        Py_TRASHCAN_END
    }

    /* 1 if both classes (whose traverse is already ours) now use
       treadle_handle_dealloc; 0 if they keep Python's: only when each is a
       class statement's (subtype_dealloc) down to object, whose own
       deallocator only frees, and neither has a finalizer. */
    static int treadle_handle_dealloc_init(void) {
        PyTypeObject *handle = treadle_handle_type, *timer = treadle_timer_type, *base;
        destructor generic;
        if (handle == NULL || timer == NULL
                || (handle->tp_traverse != treadle_handle_traverse && handle->tp_traverse != treadle_handle_traverse_named))
            return 0;
        generic = handle->tp_dealloc;
        for (base = timer; base != NULL && base->tp_dealloc == generic; base = base->tp_base) {
            if (base->tp_finalize != NULL || base->tp_del != NULL)
                return 0;
        }
        /* The timer's chain passes through the handle's: both end at object. */
        if (base != &PyBaseObject_Type || handle->tp_weaklistoffset == 0
                || timer->tp_weaklistoffset != handle->tp_weaklistoffset || timer->tp_free != handle->tp_free)
            return 0;
        handle->tp_dealloc = treadle_handle_dealloc;
        timer->tp_dealloc = treadle_handle_dealloc;
        return 1;
    }

    static CYTHON_INLINE int treadle_is_ours(PyObject *handle) {
        return Py_IS_TYPE(handle, treadle_handle_type) || Py_IS_TYPE(handle, treadle_timer_type);
    }

    static CYTHON_INLINE int treadle_handle_cancelled(PyObject *handle) {
        return TREADLE_SLOT(handle, treadle_off_cancelled) == Py_True;
    }

    static CYTHON_INLINE int treadle_is_timer(PyObject *handle) {
        return Py_IS_TYPE(handle, treadle_timer_type);
    }

    static CYTHON_INLINE int treadle_timer_scheduled(PyObject *timer) {
        return TREADLE_SLOT(timer, treadle_off_scheduled) == Py_True;
    }

    /* Slot `off` of one of ours = value (a new reference to it; the old one released). */
    static CYTHON_INLINE void treadle_set_slot(PyObject *handle, Py_ssize_t off, PyObject *value) {
        PyObject *old = TREADLE_SLOT(handle, off);
        Py_INCREF(value);
        TREADLE_SLOT(handle, off) = value;
        Py_XDECREF(old);
    }

    static CYTHON_INLINE void treadle_set_cancelled(PyObject *handle) {
        treadle_set_slot(handle, treadle_off_cancelled, Py_True);
    }

    static CYTHON_INLINE void treadle_set_unscheduled(PyObject *timer) {
        treadle_set_slot(timer, treadle_off_scheduled, Py_False);
    }

    /* What cancel() drops: the callback and its arguments (None). */
    static CYTHON_INLINE void treadle_drop_callback(PyObject *handle) {
        treadle_set_slot(handle, treadle_off_callback, Py_None);
        treadle_set_slot(handle, treadle_off_args, Py_None);
    }

    /* The handle's loop (a new reference); AttributeError if its slot is empty. */
    static CYTHON_INLINE PyObject *treadle_handle_loop(PyObject *handle) {
        PyObject *loop = TREADLE_SLOT(handle, treadle_off_loop);
        if (loop == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_loop");
            return NULL;
        }
        Py_INCREF(loop);
        return loop;
    }

    /* context.run(callback, *args) for one of ours; the callback's result or
       NULL with its exception.  A handle whose slots were changed to
       something else than __init__ sets runs through its own _run(). */
    static CYTHON_INLINE PyObject *treadle_handle_call(PyObject *handle) {
        PyObject *context = TREADLE_SLOT(handle, treadle_off_context);
        PyObject *callback = TREADLE_SLOT(handle, treadle_off_callback);
        PyObject *args = TREADLE_SLOT(handle, treadle_off_args);
        PyObject *result = NULL;
        if (context == NULL || !PyContext_CheckExact(context) || callback == NULL
                || args == NULL || !PyTuple_CheckExact(args))
            return PyObject_CallMethod(handle, "_run", NULL);
        /* The callback may cancel its own handle, which drops these. */
        Py_INCREF(context);
        Py_INCREF(callback);
        Py_INCREF(args);
        if (PyContext_Enter(context) == 0) {
            result = PyObject_Vectorcall(callback, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), NULL);
            if (PyContext_Exit(context) < 0)
                Py_CLEAR(result);
        }
        Py_DECREF(args);
        Py_DECREF(callback);
        Py_DECREF(context);
        return result;
    }
    """
    int _c_slots_init "treadle_handle_slots_init"(object handle_type, object timer_type) except -1
    object _c_new_handle "treadle_new_handle"(object callback, object args, object loop, object context, object traceback)
    object _c_new_timer "treadle_new_timer"(object when, object seq, object callback, object args, object loop, object context, object traceback)
    int _c_traverse_init "treadle_handle_traverse_init"()
    int _c_dealloc_init "treadle_handle_dealloc_init"()
    bint _c_is_ours "treadle_is_ours"(object handle)
    bint _c_cancelled "treadle_handle_cancelled"(object handle)
    bint _c_is_timer "treadle_is_timer"(object handle)
    bint _c_scheduled "treadle_timer_scheduled"(object timer)
    void _c_set_cancelled "treadle_set_cancelled"(object handle)
    void _c_set_unscheduled "treadle_set_unscheduled"(object timer)
    void _c_drop_callback "treadle_drop_callback"(object handle)
    object _c_loop "treadle_handle_loop"(object handle)
    object _c_call "treadle_handle_call"(object handle)

cdef bint _COMPILED
cdef bint _FAST
cdef bint _OWN_TRAVERSE
cdef bint _OWN_DEALLOC

cpdef bint uses_slot_offsets()

cpdef bint uses_own_traverse()

cpdef bint uses_own_dealloc()

cpdef object new_handle(object callback, tuple args, object loop, object context, bint debug)

cpdef object new_timer(object when, object seq, object callback, tuple args, object loop, object context, bint debug)

cpdef run_ready(object handle)

cdef _cancel_ours(object handle)

cpdef bint timer_cancelled(object timer) except -1

cpdef timer_unschedule(object timer)
