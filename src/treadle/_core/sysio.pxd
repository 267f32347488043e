# C declarations for sysio.py (Cython's pure Python mode: the .py is the source).
#
# One recv(2)/send(2) with MSG_DONTWAIT on the descriptor of a _socket.socket,
# with the GIL held (the call cannot block).  The descriptor is asked of the
# socket each time (_socket.socket.fileno, the C method), never cached: a
# closed socket says -1, and its number may belong to another file by then.
# The errors are the standard methods': OSError from errno, EINTR retried after
# the signal handlers (PEP 475), the same TypeError and ValueError messages.

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <errno.h>

    static PyTypeObject *treadle_socket_type = NULL;
    static PyObject *treadle_fileno = NULL;  /* _socket.socket.fileno */

    static CYTHON_INLINE int treadle_sysio_init(PyObject *socket_type) {
        if (!PyType_Check(socket_type)) {
            PyErr_SetString(PyExc_TypeError, "sysio needs the _socket.socket type");
            return -1;
        }
        treadle_fileno = PyObject_GetAttrString(socket_type, "fileno");
        if (treadle_fileno == NULL)
            return -1;
        Py_INCREF(socket_type);
        treadle_socket_type = (PyTypeObject *)socket_type;
        return 0;
    }

    /* The descriptor of `sock`; -1 with an exception (not a socket, or closed). */
    static CYTHON_INLINE int treadle_sock_fd(PyObject *sock) {
        PyObject *result;
        long fd;
        if (!PyObject_TypeCheck(sock, treadle_socket_type)) {
            PyErr_Format(PyExc_TypeError, "a socket.socket was expected, got %.200s", Py_TYPE(sock)->tp_name);
            return -1;
        }
        result = PyObject_Vectorcall(treadle_fileno, &sock, 1, NULL);
        if (result == NULL)
            return -1;
        fd = PyLong_AsLong(result);
        Py_DECREF(result);
        if (fd < 0 || fd > INT_MAX) {
            if (!PyErr_Occurred()) {
                errno = EBADF;
                PyErr_SetFromErrno(PyExc_OSError);
            }
            return -1;
        }
        return (int)fd;
    }

    /* recv(2) into buf: the count; -1 if nothing has come; -2 with an exception. */
    static CYTHON_INLINE Py_ssize_t treadle_recv_fd(PyObject *sock, char *buf, Py_ssize_t size, int flags) {
        int fd = treadle_sock_fd(sock);
        ssize_t n;
        if (fd < 0)
            return -2;
        for (;;) {
            n = recv(fd, buf, (size_t)size, flags | MSG_DONTWAIT);
            if (n >= 0)
                return (Py_ssize_t)n;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0)
                    return -2;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -1;
            PyErr_SetFromErrno(PyExc_OSError);
            return -2;
        }
    }

    static CYTHON_INLINE PyObject *treadle_recv(PyObject *sock, Py_ssize_t bufsize, int flags) {
        PyObject *data;
        Py_ssize_t n;
        if (bufsize < 0) {
            PyErr_SetString(PyExc_ValueError, "negative buffersize in recv");
            return NULL;
        }
        data = PyBytes_FromStringAndSize(NULL, bufsize);
        if (data == NULL)
            return NULL;
        n = treadle_recv_fd(sock, PyBytes_AS_STRING(data), bufsize, flags);
        if (n < 0) {
            Py_DECREF(data);
            if (n == -2)
                return NULL;
            Py_RETURN_NONE;
        }
        if (n != bufsize && _PyBytes_Resize(&data, n) < 0)
            return NULL;
        return data;
    }

    static CYTHON_INLINE Py_ssize_t treadle_recv_into(PyObject *sock, PyObject *buffer, Py_ssize_t size, int flags) {
        Py_buffer view;
        Py_ssize_t n;
        if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "recv_into() argument 1 must be read-write bytes-like object, not %.200s",
                         Py_TYPE(buffer)->tp_name);
            return -2;
        }
        if (size < 0) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "negative buffersize in recv_into");
            return -2;
        }
        if (size == 0) {
            size = view.len;
        } else if (view.len < size) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
            return -2;
        }
        n = treadle_recv_fd(sock, (char *)view.buf, size, flags);
        PyBuffer_Release(&view);
        return n;
    }

    static CYTHON_INLINE PyObject *treadle_recv_copy(PyObject *sock, PyObject *scratch) {
        Py_ssize_t n;
        if (!PyByteArray_CheckExact(scratch)) {
            PyErr_Format(PyExc_TypeError, "recv_copy() needs a bytearray to read into, got %.200s",
                         Py_TYPE(scratch)->tp_name);
            return NULL;
        }
        n = treadle_recv_fd(sock, PyByteArray_AS_STRING(scratch), PyByteArray_GET_SIZE(scratch), 0);
        if (n == -2)
            return NULL;
        if (n == -1)
            Py_RETURN_NONE;
        return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(scratch), n);
    }

    /* A read-only view of data's bytes, with the standard send's errors. */
    static CYTHON_INLINE int treadle_get_bytes(PyObject *data, Py_buffer *view) {
        if (!PyObject_CheckBuffer(data)) {
            PyErr_Format(PyExc_TypeError, "a bytes-like object is required, not '%.200s'", Py_TYPE(data)->tp_name);
            return -1;
        }
        return PyObject_GetBuffer(data, view, PyBUF_SIMPLE);
    }

    static CYTHON_INLINE Py_ssize_t treadle_send(PyObject *sock, PyObject *data, int flags, Py_ssize_t start) {
        Py_buffer view;
        ssize_t n;
        int fd;
        if (treadle_get_bytes(data, &view) < 0)
            return -2;
        if (start < 0 || start > view.len) {
            PyErr_Format(PyExc_ValueError, "start must be within the data's %zd bytes, got %zd", view.len, start);
            PyBuffer_Release(&view);
            return -2;
        }
        fd = treadle_sock_fd(sock);
        if (fd < 0) {
            PyBuffer_Release(&view);
            return -2;
        }
        for (;;) {
            n = send(fd, (char *)view.buf + start, (size_t)(view.len - start), flags | MSG_DONTWAIT);
            if (n >= 0)
                break;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) {
                    n = -2;
                    break;
                }
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                n = -1;
                break;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            n = -2;
            break;
        }
        PyBuffer_Release(&view);
        return (Py_ssize_t)n;
    }

    static CYTHON_INLINE Py_ssize_t treadle_nbytes(PyObject *data) {
        Py_buffer view;
        Py_ssize_t len;
        if (treadle_get_bytes(data, &view) < 0)
            return -1;
        len = view.len;
        PyBuffer_Release(&view);
        return len;
    }
    """
    int _c_init "treadle_sysio_init"(object socket_type) except -1
    object _c_recv "treadle_recv"(object sock, Py_ssize_t bufsize, int flags)
    Py_ssize_t _c_recv_into "treadle_recv_into"(object sock, object buffer, Py_ssize_t size, int flags) except -2
    object _c_recv_copy "treadle_recv_copy"(object sock, object scratch)
    Py_ssize_t _c_send "treadle_send"(object sock, object data, int flags, Py_ssize_t start) except -2
    Py_ssize_t _c_nbytes "treadle_nbytes"(object data) except -1

cdef bint _COMPILED
cdef int _DONTWAIT

cpdef object recv(object sock, Py_ssize_t bufsize, int flags=*)
cpdef Py_ssize_t recv_into(object sock, object buffer, Py_ssize_t size=*, int flags=*) except -2
cpdef object recv_copy(object sock, object scratch)
cpdef Py_ssize_t send(object sock, object data, int flags=*, Py_ssize_t start=*) except -2
cpdef Py_ssize_t nbytes(object data) except -1
