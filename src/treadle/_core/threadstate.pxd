# Values kept per OS thread in the thread state's own dictionary
# (PyThreadState_GetDict: shared by the thread's greenlets, cleared when the
# thread ends), for the compiled modules only: C declarations, no module.
# The same read through a threading.local subclass's attribute costs a
# lookup in the type, one in the thread's dictionary and a descriptor call,
# about 700 instructions, on every wait; this is one dictionary look.
# Each key is an interned string that names its owner ("treadle.green.hub").

cdef extern from *:
    """
    static CYTHON_INLINE PyObject *treadle_thread_dict(void) {
        PyObject *dict = PyThreadState_GetDict();  /* borrowed */
        if (dict == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "this thread has no thread state dictionary");
        return dict;
    }

    /* The value under `key` in this thread, None if there is none (new reference). */
    static CYTHON_INLINE PyObject *treadle_thread_get(PyObject *key) {
        PyObject *dict = treadle_thread_dict(), *value;
        if (dict == NULL)
            return NULL;
        value = PyDict_GetItemWithError(dict, key);  /* borrowed */
        if (value == NULL) {
            if (PyErr_Occurred())
                return NULL;
            value = Py_None;
        }
        Py_INCREF(value);
        return value;
    }

    static CYTHON_INLINE int treadle_thread_set(PyObject *key, PyObject *value) {
        PyObject *dict = treadle_thread_dict();
        if (dict == NULL)
            return -1;
        return PyDict_SetItem(dict, key, value);
    }
    """
    object thread_get "treadle_thread_get"(object key)
    int thread_set "treadle_thread_set"(object key, object value) except -1
