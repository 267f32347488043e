# C declarations for hub.py (Cython's pure Python mode: the .py is the source).
# Hub and Waiter are final classes of plain attributes: extension types, so that
# every green wait (switch_to_hub, a Waiter's switch) reads C fields.
cimport cython

# The hub of a thread, in that thread state's dictionary (PyThreadState_GetDict:
# per OS thread, shared by its greenlets, cleared when the thread ends), under
# a key of its own.
cdef extern from *:
    """
    static PyObject *treadle_hub_key = NULL;

    static CYTHON_INLINE PyObject *treadle_hub_dict(void) {
        PyObject *dict = PyThreadState_GetDict();  /* borrowed */
        if (dict == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "this thread has no thread state dictionary");
        if (treadle_hub_key == NULL && dict != NULL) {
            treadle_hub_key = PyUnicode_InternFromString("treadle.green.hub");
            if (treadle_hub_key == NULL)
                return NULL;
        }
        return dict;
    }

    static CYTHON_INLINE PyObject *treadle_thread_hub(void) {
        PyObject *dict = treadle_hub_dict(), *hub;
        if (dict == NULL)
            return NULL;
        hub = PyDict_GetItemWithError(dict, treadle_hub_key);  /* borrowed */
        if (hub == NULL) {
            if (PyErr_Occurred())
                return NULL;
            hub = Py_None;
        }
        Py_INCREF(hub);
        return hub;
    }

    static CYTHON_INLINE int treadle_set_thread_hub(PyObject *hub) {
        PyObject *dict = treadle_hub_dict();
        if (dict == NULL)
            return -1;
        return PyDict_SetItem(dict, treadle_hub_key, hub);
    }
    """
    object _c_thread_hub "treadle_thread_hub"()
    int _c_set_thread_hub "treadle_set_thread_hub"(object hub) except -1


@cython.final
cdef class Hub:
    cdef public object loop
    cdef public object glet
    cdef public object fdwaits
    cdef public dict waiters
    cdef public set tasks
    cdef public dict pending


@cython.final
cdef class Waiter:
    cdef public object glet
    cdef public bint armed


cdef bint _COMPILED

cdef Hub _thread_hub()

cdef _set_thread_hub(Hub hub)

cpdef Hub green_hub()

cpdef object switch_to_hub(object what, Hub hub=*)
