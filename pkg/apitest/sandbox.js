/* Postman's script API (pm, chai-style expect, the legacy globals, tv4, xml2Json) for the apitest
 * engine, run in the pkg/js Duktape sandbox. CMake embeds this file into the C library.
 * Entry: __mk_run(inputJson) -> outputJson (see apitest/run.c and scripts.c for both shapes). */
/* jshint es3: true */

/* ---- language gaps of Duktape (ES5.1 plus a little) that scripts commonly rely on ---- */
(function () {
    function def(obj, name, fn) {
        if (!obj[name])
            Object.defineProperty(obj, name, {value: fn, writable: true, configurable: true});
    }
    def(Array.prototype, 'find', function (f, t) {
        for (var i = 0; i < this.length; i++)
            if (f.call(t, this[i], i, this))
                return this[i];
        return undefined;
    });
    def(Array.prototype, 'findIndex', function (f, t) {
        for (var i = 0; i < this.length; i++)
            if (f.call(t, this[i], i, this))
                return i;
        return -1;
    });
    def(Array.prototype, 'includes', function (v) {
        for (var i = 0; i < this.length; i++)
            if (this[i] === v || (v !== v && this[i] !== this[i]))
                return true;
        return false;
    });
    def(Array.prototype, 'fill', function (v, s, e) {
        s = s || 0;
        e = e === undefined ? this.length : e;
        for (var i = s; i < e; i++)
            this[i] = v;
        return this;
    });
    def(Array, 'from', function (a, f) {
        var out = [];
        if (typeof a === 'string')
            a = a.split('');
        for (var i = 0; i < (a.length || 0); i++)
            out.push(f ? f(a[i], i) : a[i]);
        return out;
    });
    def(Array, 'of', function () { return Array.prototype.slice.call(arguments); });
    def(Object, 'assign', function (t) {
        for (var i = 1; i < arguments.length; i++) {
            var s = arguments[i];
            if (s)
                for (var k in s)
                    if (Object.prototype.hasOwnProperty.call(s, k))
                        t[k] = s[k];
        }
        return t;
    });
    def(Object, 'values', function (o) {
        return Object.keys(o).map(function (k) { return o[k]; });
    });
    def(Object, 'entries', function (o) {
        return Object.keys(o).map(function (k) { return [k, o[k]]; });
    });
    def(String.prototype, 'includes', function (s, p) { return this.indexOf(s, p || 0) !== -1; });
    def(String.prototype, 'startsWith', function (s, p) {
        p = p || 0;
        return this.substr(p, s.length) === s;
    });
    def(String.prototype, 'endsWith', function (s) {
        return s.length <= this.length && this.substr(this.length - s.length) === s;
    });
    def(String.prototype, 'repeat', function (n) {
        var out = '';
        for (var i = 0; i < n; i++)
            out += this;
        return out;
    });
    def(String.prototype, 'padStart', function (n, c) {
        var s = String(this);
        c = c === undefined ? ' ' : String(c);
        while (s.length < n)
            s = c + s;
        return s.slice(s.length - Math.max(n, this.length));
    });
    def(String.prototype, 'padEnd', function (n, c) {
        var s = String(this);
        c = c === undefined ? ' ' : String(c);
        while (s.length < n)
            s = s + c;
        return s.slice(0, Math.max(n, this.length));
    });
    /* Postman's old sandbox had String.prototype.has; its legacy snippets use it. */
    def(String.prototype, 'has', function (s) { return this.indexOf(s) !== -1; });
    def(Number, 'isInteger', function (v) {
        return typeof v === 'number' && isFinite(v) && Math.floor(v) === v;
    });
    def(Number, 'isFinite', function (v) { return typeof v === 'number' && isFinite(v); });
    def(Number, 'isNaN', function (v) { return typeof v === 'number' && v !== v; });
})();

/* ---- helpers ---- */
function __mk_type(v) {
    if (v === null)
        return 'null';
    if (Array.isArray(v))
        return 'array';
    var t = typeof v;
    if (t !== 'object')
        return t;
    var c = Object.prototype.toString.call(v).slice(8, -1).toLowerCase();
    return c;
}

function __mk_inspect(v, depth) {
    depth = depth || 0;
    var t = __mk_type(v);
    if (t === 'string')
        return "'" + v + "'";
    if (t === 'undefined' || t === 'null' || t === 'number' || t === 'boolean')
        return String(v);
    if (t === 'function')
        return '[Function' + (v.name ? ': ' + v.name : '') + ']';
    if (t === 'regexp')
        return String(v);
    if (t === 'date')
        return v.toISOString();
    if (t === 'error')
        return v.name + ': ' + v.message;
    if (depth > 2)
        return t === 'array' ? '[Array]' : '[Object]';
    if (t === 'array') {
        if (!v.length)
            return '[]';
        return '[ ' + v.map(function (x) { return __mk_inspect(x, depth + 1); }).join(', ') + ' ]';
    }
    if (v && v.__mkResponse)
        return 'response';
    var keys = Object.keys(v);
    if (!keys.length)
        return '{}';
    var s = '{ ' + keys.map(function (k) {
        return (/^[A-Za-z_$][\w$]*$/.test(k) ? k : "'" + k + "'") + ': ' +
               __mk_inspect(v[k], depth + 1);
    }).join(', ') + ' }';
    return s.length > 200 ? s.slice(0, 197) + '...' : s;
}

function __mk_deepEqual(a, b) {
    if (a === b)
        return true;
    if (a !== a && b !== b)
        return true;
    var ta = __mk_type(a), tb = __mk_type(b);
    if (ta !== tb)
        return false;
    if (ta === 'date')
        return a.getTime() === b.getTime();
    if (ta === 'regexp')
        return String(a) === String(b);
    if (ta === 'array') {
        if (a.length !== b.length)
            return false;
        for (var i = 0; i < a.length; i++)
            if (!__mk_deepEqual(a[i], b[i]))
                return false;
        return true;
    }
    if (ta === 'object' || ta === 'error' || ta === 'arguments') {
        var ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
        if (ka.length !== kb.length)
            return false;
        for (var j = 0; j < ka.length; j++)
            if (ka[j] !== kb[j] || !__mk_deepEqual(a[ka[j]], b[kb[j]]))
                return false;
        return true;
    }
    return false;
}

/* 'a.b[0].c' -> ['a', 'b', '0', 'c'] */
function __mk_pathParts(path) {
    var parts = [];
    String(path).replace(/\[(\d+)\]|\[["']([^"']*)["']\]|([^.\[\]]+)/g, function (m, i, q, n) {
        parts.push(i !== undefined && i !== '' ? i : (q !== undefined && q !== '' ? q : n));
        return m;
    });
    return parts;
}

function __mk_getPath(obj, path) {
    var parts = __mk_pathParts(path), cur = obj;
    for (var i = 0; i < parts.length; i++) {
        if (cur === null || cur === undefined || typeof cur !== 'object' ||
            !(parts[i] in Object(cur)))
            return {exists: false};
        cur = cur[parts[i]];
    }
    return {exists: true, value: cur};
}

function __mk_str(v) {
    if (v === undefined)
        return 'undefined';
    if (typeof v === 'string')
        return v;
    try {
        var s = JSON.stringify(v);
        return s === undefined ? String(v) : s;
    } catch (e) {
        return String(v);
    }
}

/* ---- chai-style assertions ---- */
function AssertionError(message, expected, actual) {
    this.name = 'AssertionError';
    this.message = message;
    this.expected = expected;
    this.actual = actual;
    this.showDiff = arguments.length > 1;
}
AssertionError.prototype = Object.create(Error.prototype);
AssertionError.prototype.constructor = AssertionError;
AssertionError.prototype.toString = function () { return this.name + ': ' + this.message; };

function Assertion(obj, msg) {
    this.__flags = {object: obj, message: msg};
}

(function () {
    var P = Assertion.prototype;
    function flag(a, k, v) {
        if (arguments.length > 2)
            a.__flags[k] = v;
        return a.__flags[k];
    }
    function fill(tpl, a, exp, act) {
        return tpl.replace(/#\{this\}/g, function () { return __mk_inspect(flag(a, 'object')); })
            .replace(/#\{exp\}/g, function () { return __mk_inspect(exp); })
            .replace(/#\{act\}/g, function () { return __mk_inspect(act); });
    }
    /* The one place a check passes or throws; negation applies here. */
    P.assert = function (ok, msg, negMsg, expected, actual) {
        var neg = !!flag(this, 'negate');
        if (arguments.length < 5)
            actual = flag(this, 'object');
        if (neg ? ok : !ok) {
            var m = fill(neg ? negMsg : msg, this, expected, actual);
            var custom = flag(this, 'message');
            throw new AssertionError(custom ? custom + ': ' + m : m, expected, actual);
        }
    };
    function prop(name, get) {
        Object.defineProperty(P, name, {get: get, configurable: true});
    }
    function method(names, fn) {
        names.split(' ').forEach(function (n) {
            Object.defineProperty(P, n, {value: fn, writable: true, configurable: true});
        });
    }
    /* A name that is both a property (a chain step) and a method, like chai's include or a. */
    function chainable(names, fn, onChain) {
        names.split(' ').forEach(function (n) {
            prop(n, function () {
                var self = this;
                if (onChain)
                    onChain.call(self);
                var f = function () {
                    var r = fn.apply(self, arguments);
                    return r === undefined ? self : r;
                };
                Object.setPrototypeOf(f, self);
                Object.defineProperty(f, 'length', {get: function () {
                    return self.length;
                }, configurable: true});
                return f;
            });
        });
    }

    ['to', 'be', 'been', 'is', 'that', 'which', 'and', 'has', 'have', 'with', 'at', 'of', 'same',
     'but', 'does', 'still', 'also'].forEach(function (n) {
        prop(n, function () { return this; });
    });
    prop('not', function () { flag(this, 'negate', !flag(this, 'negate')); return this; });
    prop('deep', function () { flag(this, 'deep', true); return this; });
    prop('nested', function () { flag(this, 'nested', true); return this; });
    prop('own', function () { flag(this, 'own', true); return this; });
    prop('ordered', function () { flag(this, 'ordered', true); return this; });
    prop('any', function () { flag(this, 'any', true); flag(this, 'all', false); return this; });
    prop('all', function () { flag(this, 'all', true); flag(this, 'any', false); return this; });
    prop('itself', function () { return this; });

    function isResponse(v) { return v && v.__mkResponse; }
    function obj(a) { return flag(a, 'object'); }

    /* ok is also Postman's "status is 200" when the subject is a response. */
    prop('ok', function () {
        var o = obj(this);
        if (isResponse(o))
            this.assert(o.code === 200, "expected response code to be 200 but found #{act}",
                        "expected response code to not be 200", 200, o.code);
        else
            this.assert(!!o, 'expected #{this} to be truthy', 'expected #{this} to be falsy');
        return this;
    });
    function literal(name, val) {
        prop(name, function () {
            this.assert(obj(this) === val, 'expected #{this} to be ' + name,
                        'expected #{this} to not be ' + name, val);
            return this;
        });
    }
    literal('true', true);
    literal('false', false);
    literal('null', null);
    literal('undefined', undefined);
    prop('NaN', function () {
        var o = obj(this);
        this.assert(o !== o, 'expected #{this} to be NaN', 'expected #{this} not to be NaN');
        return this;
    });
    prop('exist', function () {
        var o = obj(this);
        this.assert(o !== null && o !== undefined, 'expected #{this} to exist',
                    'expected #{this} to not exist');
        return this;
    });
    prop('exists', function () { return this.exist; });
    prop('empty', function () {
        var o = obj(this), n;
        if (typeof o === 'string' || Array.isArray(o))
            n = o.length;
        else if (o && typeof o === 'object')
            n = Object.keys(o).length;
        else
            throw new TypeError('.empty was passed non-string primitive ' + __mk_inspect(o));
        this.assert(n === 0, 'expected #{this} to be empty', 'expected #{this} not to be empty');
        return this;
    });
    prop('finite', function () {
        var o = obj(this);
        this.assert(typeof o === 'number' && isFinite(o), 'expected #{this} to be a finite number',
                    'expected #{this} to not be a finite number');
        return this;
    });
    prop('extensible', function () {
        this.assert(Object.isExtensible(obj(this)), 'expected #{this} to be extensible',
                    'expected #{this} to not be extensible');
        return this;
    });
    prop('sealed', function () {
        this.assert(Object.isSealed(obj(this)), 'expected #{this} to be sealed',
                    'expected #{this} to not be sealed');
        return this;
    });
    prop('frozen', function () {
        this.assert(Object.isFrozen(obj(this)), 'expected #{this} to be frozen',
                    'expected #{this} to not be frozen');
        return this;
    });
    prop('arguments', function () {
        this.assert(__mk_type(obj(this)) === 'arguments', 'expected #{this} to be arguments',
                    'expected #{this} to not be arguments');
        return this;
    });

    function typeCheck(type) {
        type = String(type).toLowerCase();
        var t = __mk_type(obj(this));
        var article = /^[aeiou]/.test(type) ? 'an ' : 'a ';
        this.assert(t === type, 'expected #{this} to be ' + article + type,
                    'expected #{this} not to be ' + article + type, type, t);
    }
    chainable('a an', typeCheck);

    function include(val) {
        var o = obj(this), deep = flag(this, 'deep'), found = false, t = __mk_type(o);
        if (t === 'string') {
            found = o.indexOf(val) !== -1;
        } else if (t === 'array') {
            for (var i = 0; i < o.length && !found; i++)
                found = deep ? __mk_deepEqual(o[i], val) : o[i] === val;
        } else if (o && typeof o === 'object' && val && typeof val === 'object') {
            found = true;
            for (var k in val)
                if (!(k in o) || !(deep ? __mk_deepEqual(o[k], val[k]) : o[k] === val[k]))
                    found = false;
        } else {
            throw new TypeError('the given combination of arguments (' + t + ' and ' +
                                __mk_type(val) + ') is invalid for this assertion. ' +
                                'You can use an array, a map, an object, a set, a string, ' +
                                'or a weakset instead of a ' + __mk_type(val));
        }
        this.assert(found, 'expected #{this} to ' + (deep ? 'deep ' : '') + 'include #{exp}',
                    'expected #{this} to not ' + (deep ? 'deep ' : '') + 'include #{exp}', val);
    }
    chainable('include includes contain contains', include,
              function () { flag(this, 'contains', true); });

    function cmp(name, test, words) {
        method(name, function (n) {
            var o = obj(this);
            if (flag(this, 'doLength')) {
                var len = o.length;
                this.assert(test(len, n),
                            'expected #{this} to have a length ' + words + ' #{exp} but got ' + len,
                            'expected #{this} to not have a length ' + words + ' #{exp}', n, len);
            } else {
                if (typeof o !== 'number' && !(o instanceof Date))
                    throw new AssertionError('expected ' + __mk_inspect(o) +
                                             ' to be a number or a date');
                this.assert(test(o, n), 'expected #{this} to be ' + words + ' #{exp}',
                            'expected #{this} to be not ' + words + ' #{exp}', n);
            }
            return this;
        });
    }
    cmp('above gt greaterThan', function (a, b) { return a > b; }, 'above');
    cmp('least gte greaterThanOrEqual', function (a, b) { return a >= b; }, 'at least');
    cmp('below lt lessThan', function (a, b) { return a < b; }, 'below');
    cmp('most lte lessThanOrEqual', function (a, b) { return a <= b; }, 'at most');
    method('within', function (lo, hi) {
        var o = flag(this, 'doLength') ? obj(this).length : obj(this);
        this.assert(o >= lo && o <= hi, 'expected #{this} to be within ' + lo + '..' + hi,
                    'expected #{this} to not be within ' + lo + '..' + hi);
        return this;
    });

    method('equal equals eq', function (val) {
        var o = obj(this);
        if (flag(this, 'deep'))
            return this.eql(val);
        this.assert(o === val, 'expected #{this} to equal #{exp}',
                    'expected #{this} to not equal #{exp}', val, o);
        return this;
    });
    method('eql eqls', function (val) {
        var o = obj(this);
        this.assert(__mk_deepEqual(o, val), 'expected #{this} to deeply equal #{exp}',
                    'expected #{this} to not deeply equal #{exp}', val, o);
        return this;
    });
    method('instanceof instanceOf', function (ctor) {
        this.assert(obj(this) instanceof ctor, 'expected #{this} to be an instance of ' +
                    (ctor && ctor.name || 'the constructor'),
                    'expected #{this} to not be an instance of ' + (ctor && ctor.name || 'it'));
        return this;
    });
    method('property', function (name, val) {
        var o = obj(this), has, value;
        if (flag(this, 'nested')) {
            var r = __mk_getPath(o, name);
            has = r.exists;
            value = r.value;
        } else {
            if (o === null || o === undefined)
                throw new AssertionError('Target cannot be null or undefined.');
            has = flag(this, 'own') ? Object.prototype.hasOwnProperty.call(o, name)
                                   : (name in Object(o));
            value = has ? o[name] : undefined;
        }
        var what = (flag(this, 'nested') ? 'nested ' : '') + (flag(this, 'own') ? 'own ' : '') +
                   'property ' + __mk_inspect(name);
        if (arguments.length > 1) {
            var same = has && (flag(this, 'deep') ? __mk_deepEqual(value, val) : value === val);
            this.assert(same, 'expected #{this} to have ' + what + ' of #{exp}, but got #{act}',
                        'expected #{this} to not have ' + what + ' of #{act}', val, value);
        } else {
            this.assert(has, 'expected #{this} to have ' + what,
                        'expected #{this} to not have ' + what);
        }
        flag(this, 'object', value);
        return this;
    });
    method('ownProperty haveOwnProperty', function (name, val) {
        flag(this, 'own', true);
        return arguments.length > 1 ? this.property(name, val) : this.property(name);
    });
    method('nestedProperty', function (name, val) {
        flag(this, 'nested', true);
        return arguments.length > 1 ? this.property(name, val) : this.property(name);
    });
    function lengthOf(n) {
        var o = obj(this), len = o === null || o === undefined ? undefined : o.length;
        this.assert(len === n, 'expected #{this} to have a length of #{exp} but got #{act}',
                    'expected #{this} to not have a length of #{act}', n, len);
    }
    chainable('length lengthOf', lengthOf, function () { flag(this, 'doLength', true); });
    method('match matches', function (re) {
        this.assert(re.exec(obj(this)) !== null, 'expected #{this} to match ' + re,
                    'expected #{this} not to match ' + re);
        return this;
    });
    method('string', function (s) {
        var o = obj(this);
        this.assert(typeof o === 'string' && o.indexOf(s) !== -1,
                    'expected #{this} to contain #{exp}',
                    'expected #{this} to not contain #{exp}', s);
        return this;
    });
    method('keys key', function (keys) {
        var o = obj(this);
        if (!Array.isArray(keys))
            keys = typeof keys === 'object' && keys !== null
                       ? Object.keys(keys)
                       : Array.prototype.slice.call(arguments);
        var actual = Object.keys(o), ok;
        var any = flag(this, 'any');
        if (any) {
            ok = keys.some(function (k) { return actual.indexOf(k) !== -1; });
        } else {
            ok = keys.every(function (k) { return actual.indexOf(k) !== -1; });
            if (!flag(this, 'contains'))
                ok = ok && keys.length === actual.length;
        }
        this.assert(ok, 'expected #{this} to have ' + (any ? 'any of ' : '') + 'keys #{exp}',
                    'expected #{this} to not have ' + (any ? 'any of ' : '') + 'keys #{exp}',
                    keys, actual);
        return this;
    });
    method('members', function (list) {
        var o = obj(this), deep = flag(this, 'deep');
        function has(arr, v) {
            for (var i = 0; i < arr.length; i++)
                if (deep ? __mk_deepEqual(arr[i], v) : arr[i] === v)
                    return true;
            return false;
        }
        var sub = list.every(function (v) { return has(o, v); });
        var ok = flag(this, 'contains') ? sub
                                        : sub && o.length === list.length &&
                                              o.every(function (v) { return has(list, v); });
        if (ok && flag(this, 'ordered'))
            ok = list.every(function (v, i) {
                return deep ? __mk_deepEqual(o[i], v) : o[i] === v;
            });
        var what = flag(this, 'contains') ? 'be a superset of' : 'have the same members as';
        this.assert(ok, 'expected #{this} to ' + what + ' #{exp}',
                    'expected #{this} to not ' + what + ' #{exp}', list, o);
        return this;
    });
    method('oneOf', function (list) {
        var o = obj(this), deep = flag(this, 'deep');
        var ok = list.some(function (v) { return deep ? __mk_deepEqual(v, o) : v === o; });
        this.assert(ok, 'expected #{this} to be one of #{exp}',
                    'expected #{this} to not be one of #{exp}', list);
        return this;
    });
    method('closeTo approximately', function (exp, delta) {
        var o = obj(this);
        this.assert(Math.abs(o - exp) <= delta,
                    'expected #{this} to be close to ' + exp + ' +/- ' + delta,
                    'expected #{this} not to be close to ' + exp + ' +/- ' + delta);
        return this;
    });
    method('satisfy satisfies', function (fn) {
        var r = fn(obj(this));
        this.assert(r, 'expected #{this} to satisfy ' + __mk_inspect(fn),
                    'expected #{this} to not satisfy ' + __mk_inspect(fn), true, r);
        return this;
    });
    method('throw throws Throw', function (what) {
        var fn = obj(this), thrown = null, did = false;
        try {
            fn();
        } catch (e) {
            did = true;
            thrown = e;
        }
        var ok = did;
        if (did && what !== undefined) {
            if (typeof what === 'string')
                ok = String(thrown && thrown.message).indexOf(what) !== -1;
            else if (what instanceof RegExp)
                ok = what.test(String(thrown && thrown.message));
            else if (typeof what === 'function')
                ok = thrown instanceof what;
        }
        var shown = what !== undefined ? ' ' + __mk_inspect(what) : '';
        this.assert(ok, 'expected #{this} to throw' + shown,
                    'expected #{this} to not throw' + shown);
        return this;
    });
    method('respondTo respondsTo', function (name) {
        var o = obj(this);
        this.assert(typeof (typeof o === 'function' ? o.prototype[name] : o[name]) === 'function',
                    'expected #{this} to respond to ' + __mk_inspect(name),
                    'expected #{this} to not respond to ' + __mk_inspect(name));
        return this;
    });
    method('fail', function (msg) { throw new AssertionError(msg || 'assert.fail()'); });

    /* ---- Postman's response assertions (chai-postman) ---- */
    function resp(a) {
        var o = obj(a);
        if (!isResponse(o))
            throw new AssertionError('expected ' + __mk_inspect(o) + ' to be a response');
        return o;
    }
    method('status', function (s) {
        var r = resp(this);
        if (typeof s === 'string')
            this.assert(r.status === s,
                        'expected response to have status reason #{exp} but got #{act}',
                        'expected response to not have status reason #{exp}', s, r.status);
        else
            this.assert(r.code === s, 'expected response to have status code #{exp} but got #{act}',
                        'expected response to not have status code #{exp}', s, r.code);
        return this;
    });
    method('header', function (name, value) {
        var r = resp(this), has = r.headers.has(name);
        if (arguments.length < 2) {
            this.assert(has, "expected response to have header with key '" + name + "'",
                        "expected response to not have header with key '" + name + "'", name);
        } else {
            var v = r.headers.get(name);
            this.assert(has && v === value,
                        "expected '" + name + "' response header to be #{exp} but got #{act}",
                        "expected '" + name + "' response header to not be #{exp}", value, v);
        }
        return this;
    });
    method('body', function (v) {
        var r = resp(this), text = r.text();
        if (arguments.length === 0)
            this.assert(text.length > 0, 'expected response to have content in body',
                        'expected response to not have content in body');
        else if (v instanceof RegExp)
            this.assert(v.test(text), 'expected response body text to match ' + v,
                        'expected response body text to not match ' + v, String(v), text);
        else if (typeof v === 'string')
            this.assert(text === v, 'expected response body to equal #{exp} but got #{act}',
                        'expected response body to not equal #{exp}', v, text);
        else {
            var j;
            try { j = JSON.parse(text); } catch (e) { j = undefined; }
            this.assert(__mk_deepEqual(j, v),
                        'expected response body json to equal #{exp} but got #{act}',
                        'expected response body json to not equal #{exp}', v, j);
        }
        return this;
    });
    method('jsonBody', function (path, value) {
        var r = resp(this), j, ok = true;
        try { j = JSON.parse(r.text()); } catch (e) { ok = false; }
        if (arguments.length === 0) {
            this.assert(ok, 'expected response body to be a valid json',
                        'expected response body not to be a valid json');
        } else if (typeof path === 'object' && path !== null) {
            this.assert(ok && __mk_deepEqual(j, path),
                        'expected response body json to equal #{exp} but got #{act}',
                        'expected response body json to not equal #{exp}', path, j);
        } else {
            var g = ok ? __mk_getPath(j, path) : {exists: false};
            if (arguments.length < 2)
                this.assert(g.exists,
                            "expected #{act} in response to contain property '" + path + "'",
                            "expected #{act} in response to not contain property '" + path + "'",
                            path, j);
            else
                this.assert(g.exists && __mk_deepEqual(g.value, value),
                            "expected response body json at '" + path +
                                "' to contain #{exp} but got #{act}",
                            "expected response body json at '" + path + "' to not contain #{exp}",
                            value, g.value);
        }
        return this;
    });
    /* on a response its JSON body; on anything else the value itself */
    method('jsonSchema', function (schema) {
        var o = obj(this), j = o, what = 'value';
        if (isResponse(o)) {
            what = 'response body';
            try { j = JSON.parse(o.text()); } catch (e) { j = undefined; }
        }
        var res = tv4.validateResult(j, schema);
        this.assert(res.valid, 'expected ' + what + ' to be valid against schema: ' +
                    (res.error ? res.error.message + ' at ' + (res.error.dataPath || '/') : ''),
                    'expected ' + what + ' to not be valid against schema');
        return this;
    });
    method('responseTime', function (ms) {
        var r = resp(this);
        this.assert(r.responseTime === ms, 'expected response time to be #{exp} but got #{act}',
                    'expected response time to not be #{exp}', ms, r.responseTime);
        return this;
    });
    function statusClass(name, test, words) {
        prop(name, function () {
            var r = resp(this);
            this.assert(test(r.code), 'expected response code to be ' + words + ' but found #{act}',
                        'expected response code to not be ' + words + ' but found #{act}',
                        words, r.code);
            return this;
        });
    }
    statusClass('info', function (c) { return c >= 100 && c < 200; }, '1XX');
    statusClass('success', function (c) { return c >= 200 && c < 300; }, '2XX');
    statusClass('redirection', function (c) { return c >= 300 && c < 400; }, '3XX');
    statusClass('clientError', function (c) { return c >= 400 && c < 500; }, '4XX');
    statusClass('serverError', function (c) { return c >= 500 && c < 600; }, '5XX');
    statusClass('error', function (c) { return c >= 400 && c < 600; }, '4XX or 5XX');
    statusClass('accepted', function (c) { return c === 202; }, '202');
    statusClass('withoutContent', function (c) { return c === 204; }, '204');
    statusClass('badRequest', function (c) { return c === 400; }, '400');
    statusClass('unauthorized', function (c) { return c === 401; }, '401');
    statusClass('unauthorised', function (c) { return c === 401; }, '401');
    statusClass('forbidden', function (c) { return c === 403; }, '403');
    statusClass('notFound', function (c) { return c === 404; }, '404');
    statusClass('rateLimited', function (c) { return c === 429; }, '429');
    function mediaType(name, re) {
        prop(name, function () {
            var r = resp(this), ct = String(r.headers.get('Content-Type') || '');
            var ok = re.test(ct);
            if (ok && name === 'json') {
                try { JSON.parse(r.text()); } catch (e) { ok = false; }
            }
            this.assert(ok,
                        'expected response to be ' + name + ' (content-type ' +
                            __mk_inspect(ct) + ')',
                        'expected response to not be ' + name);
            return this;
        });
    }
    mediaType('json', /json/i);
    mediaType('html', /html/i);
    mediaType('xml', /xml/i);
    prop('withBody', function () {
        var r = resp(this);
        this.assert(r.text().length > 0, 'expected response to have content in body',
                    'expected response to not have content in body');
        return this;
    });
})();

/* ---- tv4: JSON Schema (draft 4, the parts people use) ---- */
var tv4 = (function () {
    function typeOf(v) {
        var t = __mk_type(v);
        return t === 'number' && Math.floor(v) === v ? 'integer' : t;
    }
    function typeOk(v, want) {
        var t = typeOf(v);
        return want === t || (want === 'number' && t === 'integer') ||
               (want === 'object' && t === 'object');
    }
    function err(message, path, schemaPath) {
        return {message: message, dataPath: path, schemaPath: schemaPath, code: 0};
    }
    function resolve(root, s) {
        if (s && typeof s.$ref === 'string' && s.$ref.charAt(0) === '#') {
            var r = __mk_getPath(root, s.$ref.slice(2).split('/').join('.'));
            return r.exists ? r.value : {};
        }
        return s;
    }
    function check(root, v, s, path, out, stopFirst) {
        s = resolve(root, s);
        if (!s || typeof s !== 'object')
            return;
        function fail(msg, key) {
            out.push(err(msg, path, '/' + key));
        }
        if (s.type !== undefined) {
            var types = Array.isArray(s.type) ? s.type : [s.type];
            if (!types.some(function (t) { return typeOk(v, t); }))
                return fail('Invalid type: ' + typeOf(v) + ' (expected ' + types.join('/') + ')',
                            'type');
        }
        if (s['enum'] && !s['enum'].some(function (e) { return __mk_deepEqual(e, v); }))
            fail('No enum match for: ' + __mk_str(v), 'enum');
        if ('const' in s && !__mk_deepEqual(s['const'], v))
            fail('Value does not match const', 'const');
        if (typeof v === 'number') {
            var exMin = s.exclusiveMinimum === true, exMax = s.exclusiveMaximum === true;
            if (s.minimum !== undefined && (exMin ? v <= s.minimum : v < s.minimum))
                fail('Value ' + v + ' is less than minimum ' + s.minimum, 'minimum');
            if (s.maximum !== undefined && (exMax ? v >= s.maximum : v > s.maximum))
                fail('Value ' + v + ' is greater than maximum ' + s.maximum, 'maximum');
            if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum)
                fail('Value ' + v + ' is not above ' + s.exclusiveMinimum, 'exclusiveMinimum');
            if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum)
                fail('Value ' + v + ' is not below ' + s.exclusiveMaximum, 'exclusiveMaximum');
            if (s.multipleOf && Math.abs(v / s.multipleOf - Math.round(v / s.multipleOf)) > 1e-9)
                fail('Value ' + v + ' is not a multiple of ' + s.multipleOf, 'multipleOf');
        }
        if (typeof v === 'string') {
            if (s.minLength !== undefined && v.length < s.minLength)
                fail('String is too short (' + v.length + ' chars), minimum ' + s.minLength,
                     'minLength');
            if (s.maxLength !== undefined && v.length > s.maxLength)
                fail('String is too long (' + v.length + ' chars), maximum ' + s.maxLength,
                     'maxLength');
            if (s.pattern && !new RegExp(s.pattern).test(v))
                fail('String does not match pattern: ' + s.pattern, 'pattern');
        }
        if (Array.isArray(v)) {
            if (s.minItems !== undefined && v.length < s.minItems)
                fail('Array is too short (' + v.length + '), minimum ' + s.minItems, 'minItems');
            if (s.maxItems !== undefined && v.length > s.maxItems)
                fail('Array is too long (' + v.length + '), maximum ' + s.maxItems, 'maxItems');
            if (s.uniqueItems)
                for (var i = 0; i < v.length; i++)
                    for (var j = i + 1; j < v.length; j++)
                        if (__mk_deepEqual(v[i], v[j]))
                            fail('Array items are not unique (indices ' + i + ' and ' + j + ')',
                                 'uniqueItems');
            if (Array.isArray(s.items)) {
                for (var k = 0; k < v.length; k++) {
                    if (k < s.items.length)
                        check(root, v[k], s.items[k], path + '/' + k, out, stopFirst);
                    else if (s.additionalItems === false)
                        fail('Additional items not allowed', 'additionalItems');
                }
            } else if (s.items) {
                for (var m = 0; m < v.length; m++)
                    check(root, v[m], s.items, path + '/' + m, out, stopFirst);
            }
        }
        if (v && typeof v === 'object' && !Array.isArray(v)) {
            var props = s.properties || {};
            (Array.isArray(s.required) ? s.required : []).forEach(function (r) {
                if (!(r in v))
                    fail('Missing required property: ' + r, 'required');
            });
            Object.keys(props).forEach(function (p) {
                if (p in v)
                    check(root, v[p], props[p], path + '/' + p, out, stopFirst);
                else if (props[p] && props[p].required === true)
                    fail('Missing required property: ' + p, 'properties/' + p + '/required');
            });
            var keys = Object.keys(v);
            if (s.minProperties !== undefined && keys.length < s.minProperties)
                fail('Too few properties defined (' + keys.length + ')', 'minProperties');
            if (s.maxProperties !== undefined && keys.length > s.maxProperties)
                fail('Too many properties defined (' + keys.length + ')', 'maxProperties');
            var patterns = s.patternProperties || {};
            keys.forEach(function (k2) {
                var matched = k2 in props;
                Object.keys(patterns).forEach(function (pat) {
                    if (new RegExp(pat).test(k2)) {
                        matched = true;
                        check(root, v[k2], patterns[pat], path + '/' + k2, out, stopFirst);
                    }
                });
                if (!matched) {
                    if (s.additionalProperties === false)
                        fail('Additional properties not allowed: ' + k2, 'additionalProperties');
                    else if (s.additionalProperties && typeof s.additionalProperties === 'object')
                        check(root, v[k2], s.additionalProperties, path + '/' + k2, out, stopFirst);
                }
            });
        }
        if (s.allOf)
            s.allOf.forEach(function (sub) { check(root, v, sub, path, out, stopFirst); });
        function count(list) {
            var n = 0;
            list.forEach(function (sub) {
                var o = [];
                check(root, v, sub, path, o, true);
                if (!o.length)
                    n++;
            });
            return n;
        }
        if (s.anyOf && count(s.anyOf) === 0)
            fail('Data does not match any schemas from "anyOf"', 'anyOf');
        if (s.oneOf && count(s.oneOf) !== 1)
            fail('Data does not match exactly one schema from "oneOf"', 'oneOf');
        if (s.not && count([s.not]) === 1)
            fail('Data matches schema from "not"', 'not');
    }
    var api = {
        error: null,
        missing: [],
        validateMultiple: function (data, schema) {
            var out = [];
            check(schema, data, schema, '', out, false);
            return {valid: out.length === 0, errors: out, missing: []};
        },
        validateResult: function (data, schema) {
            var r = api.validateMultiple(data, schema);
            return {valid: r.valid, error: r.errors[0] || null, missing: []};
        },
        validate: function (data, schema) {
            var r = api.validateResult(data, schema);
            api.error = r.error;
            return r.valid;
        },
        addSchema: function () {},
        getSchema: function () { return undefined; },
        freshApi: function () { return api; }
    };
    return api;
})();

/* ---- xml2Json: xml2js's shape with explicitArray off, as Postman's sandbox gives it ---- */
function xml2Json(xml) {
    var s = String(xml), i = 0;
    function decode(t) {
        return t.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, function (m, e) {
            if (e.charAt(0) === '#')
                return String.fromCharCode(e.charAt(1) === 'x' ? parseInt(e.slice(2), 16)
                                                                : parseInt(e.slice(1), 10));
            return {lt: '<', gt: '>', amp: '&', quot: '"', apos: "'"}[e];
        });
    }
    function skipMisc() {
        for (;;) {
            while (i < s.length && /\s/.test(s.charAt(i)))
                i++;
            if (s.substr(i, 4) === '<!--')
                i = s.indexOf('-->', i) + 3;
            else if (s.substr(i, 2) === '<?')
                i = s.indexOf('?>', i) + 2;
            else if (s.substr(i, 9) === '<!DOCTYPE')
                i = s.indexOf('>', i) + 1;
            else
                return;
            if (i < 3)
                throw new Error('xml2Json: unterminated markup');
        }
    }
    function add(obj, k, v) {
        if (!(k in obj))
            obj[k] = v;
        else if (Array.isArray(obj[k]))
            obj[k].push(v);
        else
            obj[k] = [obj[k], v];
    }
    function element() {
        var m = /^<([^\s\/>]+)/.exec(s.slice(i, i + 256));
        if (!m)
            throw new Error('xml2Json: expected an element at offset ' + i);
        var name = m[1], attrs = null, children = {}, text = '', hasChildren = false;
        i += m[0].length;
        var am, attrRe = /^\s*([^\s=\/>]+)\s*=\s*("([^"]*)"|'([^']*)')/;
        while ((am = attrRe.exec(s.slice(i, i + 4096))) !== null) {
            attrs = attrs || {};
            attrs[am[1]] = decode(am[3] !== undefined ? am[3] : am[4]);
            i += am[0].length;
        }
        while (i < s.length && /\s/.test(s.charAt(i)))
            i++;
        if (s.substr(i, 2) === '/>') {
            i += 2;
        } else {
            if (s.charAt(i) !== '>')
                throw new Error('xml2Json: malformed tag <' + name + '>');
            i++;
            for (;;) {
                if (i >= s.length)
                    throw new Error('xml2Json: unclosed element <' + name + '>');
                if (s.substr(i, 2) === '</') {
                    var end = s.indexOf('>', i);
                    i = end + 1;
                    break;
                }
                if (s.substr(i, 9) === '<![CDATA[') {
                    var ce = s.indexOf(']]>', i);
                    text += s.slice(i + 9, ce);
                    i = ce + 3;
                } else if (s.substr(i, 4) === '<!--') {
                    i = s.indexOf('-->', i) + 3;
                } else if (s.charAt(i) === '<') {
                    var c = element();
                    add(children, c[0], c[1]);
                    hasChildren = true;
                } else {
                    var lt = s.indexOf('<', i);
                    if (lt < 0)
                        lt = s.length;
                    text += decode(s.slice(i, lt));
                    i = lt;
                }
            }
        }
        text = text.trim();
        var val;
        if (!hasChildren && !attrs) {
            val = text;
        } else {
            val = children;
            if (attrs)
                val.$ = attrs;
            if (text)
                val._ = text;
        }
        return [name, val];
    }
    skipMisc();
    var root = element(), out = {};
    out[root[0]] = root[1];
    return out;
}

/* ---- the pm object ---- */
function __mk_PropertyList(items, caseless) {
    this.__items = items || [];
    this.__caseless = !!caseless;
}
(function () {
    var P = __mk_PropertyList.prototype;
    P.__find = function (key) {
        var k = this.__caseless ? String(key).toLowerCase() : String(key);
        for (var i = 0; i < this.__items.length; i++) {
            var it = this.__items[i], ik = this.__caseless ? String(it.key).toLowerCase() : it.key;
            if (ik === k && !it.disabled)
                return i;
        }
        return -1;
    };
    P.get = function (key) {
        var i = this.__find(key);
        return i < 0 ? undefined : this.__items[i].value;
    };
    P.one = function (key) {
        var i = this.__find(key);
        return i < 0 ? undefined : this.__items[i];
    };
    P.has = function (key, value) {
        var i = this.__find(key);
        return i >= 0 && (arguments.length < 2 || this.__items[i].value === value);
    };
    P.all = function () { return this.__items.filter(function (i) { return !i.disabled; }); };
    P.count = function () { return this.all().length; };
    P.each = function (fn) { this.all().forEach(fn); };
    P.map = function (fn) { return this.all().map(fn); };
    P.filter = function (fn) { return this.all().filter(fn); };
    P.find = function (fn) { return this.all().find(fn); };
    P.idx = function (n) { return this.all()[n]; };
    P.toObject = function () {
        var o = {};
        this.each(function (i) { o[i.key] = i.value; });
        return o;
    };
    P.toJSON = function () { return this.__items; };
    P.add = function (item) {
        if (typeof item === 'string') {
            var c = item.indexOf(':');
            item = {key: item.slice(0, c).trim(), value: item.slice(c + 1).trim()};
        }
        this.__items.push({key: item.key,
                           value: item.value === undefined ? '' : String(item.value)});
    };
    P.append = P.add;
    P.upsert = function (item) {
        var i = this.__find(item.key);
        if (i < 0)
            this.add(item);
        else
            this.__items[i].value = String(item.value);
    };
    P.remove = function (key) {
        var self = this;
        var test = typeof key === 'function' ? key : function (it) {
            return self.__caseless ? String(it.key).toLowerCase() === String(key).toLowerCase()
                                   : it.key === key;
        };
        this.__items = this.__items.filter(function (it) { return !test(it); });
    };
    P.clear = function () { this.__items = []; };
    P.toString = function () {
        return this.all().map(function (i) { return i.key + ': ' + i.value; }).join('\n');
    };
    P.populate = function (items) { this.__items = items.slice(); };
})();

function __mk_Scope(values, name) {
    this.values = values;
    if (name !== undefined)
        this.name = name;
}
(function () {
    var P = __mk_Scope.prototype;
    P.get = function (k) { return Object.prototype.hasOwnProperty.call(this.values,
            k) ? this.values[k] : undefined; };
    P.has = function (k) { return Object.prototype.hasOwnProperty.call(this.values, k); };
    P.set = function (k, v) {
        if (v === undefined)
            v = '';
        this.values[k] = v;
    };
    P.unset = function (k) { delete this.values[k]; };
    P.clear = function () {
        for (var k in this.values)
            delete this.values[k];
    };
    P.toObject = function () { return Object.assign({}, this.values); };
    P.toJSON = function () { return this.toObject(); };
})();

function __mk_Url(raw) { this.__parse(String(raw)); }
(function () {
    var P = __mk_Url.prototype;
    P.__parse = function (raw) {
        /* protocol, host, port (a number or a {{variable}}), path, query, hash */
        var re = new RegExp('^(?:([A-Za-z][\\w+.-]*)://)?([^/?#:]*)(?::(\\d+|\\{\\{[^}]*\\}\\}))?' +
                            '([^?#]*)(?:\\?([^#]*))?(?:#(.*))?$');
        var m = re.exec(raw) || [];
        this.protocol = m[1];
        this.host = m[2] ? m[2].split('.') : [];
        this.port = m[3];
        this.path = m[4] ? m[4].replace(/^\//, '').split('/') : [];
        this.query = new __mk_PropertyList((m[5] ? m[5].split('&') : []).map(function (kv) {
            var e = kv.indexOf('=');
            return e < 0 ? {key: kv, value: null} : {key: kv.slice(0, e), value: kv.slice(e + 1)};
        }));
        this.hash = m[6];
    };
    P.getHost = function () { return this.host.join('.'); };
    P.getPath = function () { return '/' + this.path.join('/'); };
    P.getQueryString = function () {
        return this.query.all().map(function (q) {
            return q.value === null || q.value === undefined ? q.key : q.key + '=' + q.value;
        }).join('&');
    };
    P.getPathWithQuery = function () {
        var q = this.getQueryString();
        return this.getPath() + (q ? '?' + q : '');
    };
    P.getRemote = function () { return this.getHost() + (this.port ? ':' + this.port : ''); };
    P.toString = function () {
        var q = this.getQueryString();
        return (this.protocol ? this.protocol + '://' : '') + this.getRemote() +
               (this.path.length ? this.getPath() : '') + (q ? '?' + q : '') +
               (this.hash ? '#' + this.hash : '');
    };
    P.update = function (raw) { this.__parse(String(raw)); };
    P.addQueryParams = function (params) {
        var list = typeof params === 'string' ? params.split('&').map(function (kv) {
            var e = kv.indexOf('=');
            return e < 0 ? {key: kv, value: null} : {key: kv.slice(0, e), value: kv.slice(e + 1)};
        }) : [].concat(params);
        var q = this.query;
        list.forEach(function (p) { q.__items.push({key: p.key, value: p.value}); });
    };
    P.removeQueryParams = function (names) {
        var drop = [].concat(names).map(function (n) { return typeof n === 'string' ? n : n.key; });
        this.query.remove(function (it) { return drop.indexOf(it.key) !== -1; });
    };
    P.toJSON = function () { return this.toString(); };
})();

function __mk_Request(r) {
    this.id = r.id;
    this.name = r.name;
    this.method = r.method;
    this.url = new __mk_Url(r.url);
    this.headers = new __mk_PropertyList(r.headers, true);
    this.body = r.body ? Object.assign({}, r.body) : undefined;
    if (this.body) {
        var b = this.body;
        if (b.urlencoded)
            b.urlencoded = new __mk_PropertyList(b.urlencoded);
        if (b.formdata)
            b.formdata = new __mk_PropertyList(b.formdata);
        b.toString = function () { return this.raw !== undefined ? String(this.raw) : ''; };
        b.update = function (v) {
            if (typeof v === 'string') {
                this.mode = 'raw';
                this.raw = v;
            } else if (v && typeof v === 'object') {
                this.mode = v.mode || 'raw';
                if (v.raw !== undefined)
                    this.raw = typeof v.raw === 'string' ? v.raw : JSON.stringify(v.raw);
            }
        };
    }
    this.auth = r.auth;
}
__mk_Request.prototype.addHeader = function (h) { this.headers.add(h); };
__mk_Request.prototype.removeHeader = function (k) { this.headers.remove(k); };
__mk_Request.prototype.upsertHeader = function (h) { this.headers.upsert(h); };
__mk_Request.prototype.toJSON = function () {
    var body = this.body;
    if (body)
        body = {mode: body.mode, raw: body.raw,
                urlencoded: body.urlencoded && body.urlencoded.toJSON ? body.urlencoded.toJSON()
                                                                     : body.urlencoded,
                formdata: body.formdata && body.formdata.toJSON ? body.formdata.toJSON()
                                                                : body.formdata,
                graphql: body.graphql, options: body.options};
    return {method: this.method, url: String(this.url), headers: this.headers.toJSON(), body: body};
};

function __mk_Response(r) {
    this.__mkResponse = true;
    this.code = r.code;
    this.status = r.status;
    this.headers = new __mk_PropertyList(r.headers, true);
    this.responseTime = r.responseTime;
    this.responseSize = r.responseSize;
    this.__body = r.body === undefined || r.body === null ? '' : String(r.body);
    var cookies = [];
    this.headers.each(function (h) {
        if (String(h.key).toLowerCase() === 'set-cookie') {
            var first = String(h.value).split(';')[0], e = first.indexOf('=');
            if (e > 0)
                cookies.push({key: first.slice(0, e).trim(), value: first.slice(e + 1).trim(),
                              name: first.slice(0, e).trim()});
        }
    });
    this.cookies = new __mk_PropertyList(cookies);
}
(function () {
    var P = __mk_Response.prototype;
    P.text = function () { return this.__body; };
    P.json = function () {
        try {
            return JSON.parse(this.__body);
        } catch (e) {
            var err = new SyntaxError('JSONError: ' + e.message + ' in response body ' +
                                      __mk_inspect(this.__body.slice(0, 60)));
            err.name = 'JSONError';
            throw err;
        }
    };
    P.reason = function () { return this.status; };
    P.size = function () { return {body: this.__body.length, header: 0,
                                   total: this.__body.length}; };
    P.dataURI = function () { return 'data:;base64,' + btoa(this.__body); };
    Object.defineProperty(P, 'to', {get: function () { return new Assertion(this); }});
    Object.defineProperty(P, 'body', {get: function () { return this.__body; }});
})();

/* base64 for btoa/atob and basic auth in scripts (bytes are char codes < 256). */
function btoa(s) {
    var t = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', o = '';
    s = String(s);
    for (var i = 0; i < s.length; i += 3) {
        var a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
        o += t.charAt(a >> 2) + t.charAt(((a & 3) << 4) | (b >> 4 || 0)) +
             (i + 1 < s.length ? t.charAt(((b & 15) << 2) | (c >> 6 || 0)) : '=') +
             (i + 2 < s.length ? t.charAt(c & 63) : '=');
    }
    return o;
}
function atob(s) {
    var t = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    var o = '', bits = 0, n = 0;
    s = String(s).replace(/[=\s]/g, '');
    for (var i = 0; i < s.length; i++) {
        bits = (bits << 6) | t.indexOf(s.charAt(i));
        n += 6;
        if (n >= 8) {
            n -= 8;
            o += String.fromCharCode((bits >> n) & 255);
        }
    }
    return o;
}

/* Rewrites the ES2015 syntax people type into Postman (arrow functions, let/const, template
 * literals, shorthand methods are not covered) into ES5 Duktape compiles. A token-level pass:
 * strings, comments and regular expressions are copied untouched. */
function __mk_es5(src) {
    if (!/=>|`|\blet\b|\bconst\b/.test(src))
        return src;
    var out = '', i = 0, n = src.length, lastSig = '';
    function regexAllowed() {
        return lastSig === '' || /[(,=:\[!&|?{};+\-*%<>~^]$/.test(lastSig) ||
               /\b(return|typeof|case|do|else|in|of|new|delete|void|throw)$/.test(lastSig);
    }
    /* an arrow's parameters: the text we just emitted, back to its start */
    function arrowParams() {
        var j = out.length - 1;
        while (j >= 0 && /\s/.test(out.charAt(j)))
            j--;
        var end = j + 1, start;
        if (out.charAt(j) === ')') {
            var depth = 0;
            for (; j >= 0; j--) {
                if (out.charAt(j) === ')')
                    depth++;
                else if (out.charAt(j) === '(' && --depth === 0)
                    break;
            }
            start = j;
            var params = out.slice(start + 1, end - 1);
            out = out.slice(0, start);
            return params;
        }
        while (j >= 0 && /[\w$]/.test(out.charAt(j)))
            j--;
        start = j + 1;
        var p = out.slice(start, end);
        out = out.slice(0, start);
        return p;
    }
    /* an expression body: up to the ',' ')' ']' '}' ';' or newline that ends it at depth 0 */
    function exprEnd(k) {
        var depth = 0;
        for (; k < n; k++) {
            var ch = src.charAt(k);
            if (ch === '"' || ch === "'") {
                k = skipString(k);
                continue;
            }
            if (ch === '`') {
                k = skipTemplate(k);
                continue;
            }
            if (ch === '(' || ch === '[' || ch === '{')
                depth++;
            else if (ch === ')' || ch === ']' || ch === '}') {
                if (depth === 0)
                    return k;
                depth--;
            } else if (depth === 0 && (ch === ',' || ch === ';' || ch === '\n'))
                return k;
        }
        return n;
    }
    function skipString(k) {
        var q = src.charAt(k);
        for (k++; k < n && src.charAt(k) !== q; k++)
            if (src.charAt(k) === '\\')
                k++;
        return k;
    }
    function skipTemplate(k) {
        for (k++; k < n && src.charAt(k) !== '`'; k++)
            if (src.charAt(k) === '\\')
                k++;
        return k;
    }
    while (i < n) {
        var c = src.charAt(i), d = src.charAt(i + 1);
        if (c === '/' && d === '/') {
            var e = src.indexOf('\n', i);
            e = e < 0 ? n : e;
            out += src.slice(i, e);
            i = e;
        } else if (c === '/' && d === '*') {
            var e2 = src.indexOf('*/', i + 2);
            e2 = e2 < 0 ? n : e2 + 2;
            out += src.slice(i, e2);
            i = e2;
        } else if (c === '"' || c === "'") {
            var e3 = skipString(i);
            out += src.slice(i, e3 + 1);
            i = e3 + 1;
            lastSig = c;
        } else if (c === '/' && regexAllowed()) {
            var k = i + 1, inClass = false;
            for (; k < n; k++) {
                var ch2 = src.charAt(k);
                if (ch2 === '\\') {
                    k++;
                    continue;
                }
                if (ch2 === '[')
                    inClass = true;
                else if (ch2 === ']')
                    inClass = false;
                else if (ch2 === '/' && !inClass)
                    break;
                else if (ch2 === '\n')
                    break;
            }
            k++;
            while (k < n && /[a-z]/.test(src.charAt(k)))
                k++;
            out += src.slice(i, k);
            i = k;
            lastSig = '/';
        } else if (c === '`') {
            var end = skipTemplate(i), body = src.slice(i + 1, end), parts = [], lit = '', p = 0;
            while (p < body.length) {
                if (body.charAt(p) === '\\') {
                    lit += body.charAt(p) + body.charAt(p + 1);
                    p += 2;
                } else if (body.charAt(p) === '$' && body.charAt(p + 1) === '{') {
                    var depth2 = 1, q = p + 2;
                    for (; q < body.length && depth2; q++) {
                        if (body.charAt(q) === '{')
                            depth2++;
                        else if (body.charAt(q) === '}')
                            depth2--;
                    }
                    parts.push(JSON.stringify(lit.replace(/\\`/g, '`')));
                    lit = '';
                    parts.push('(' + __mk_es5(body.slice(p + 2, q - 1)) + ')');
                    p = q;
                } else {
                    lit += body.charAt(p);
                    p++;
                }
            }
            parts.push(JSON.stringify(lit.replace(/\\`/g, '`')).replace(/\\\\/g, '\\'));
            out += '(' + parts.join(' + ') + ')';
            i = end + 1;
            lastSig = ')';
        } else if (c === '=' && d === '>') {
            var params = arrowParams();
            i += 2;
            while (i < n && /[ \t]/.test(src.charAt(i)))
                i++;
            if (src.charAt(i) === '{') {
                out += 'function (' + params + ') ';
            } else {
                var ee = exprEnd(i);
                out += '(function (' + params + ') { return ' + __mk_es5(src.slice(i, ee)) + '; })';
                i = ee;
            }
            lastSig = ')';
        } else if (/[A-Za-z_$]/.test(c)) {
            var m = /^[\w$]+/.exec(src.slice(i, i + 64))[0];
            var prev = out.charAt(out.length - 1);
            var decl = (m === 'let' || m === 'const') && prev !== '.';
            if (decl && !/[\w$]/.test(src.charAt(i + m.length)))
                out += 'var';
            else
                out += m;
            i += m.length;
            lastSig = m;
        } else {
            out += c;
            i++;
            if (!/\s/.test(c))
                lastSig = c;
        }
    }
    return out;
}

/* Runs one event (prerequest or test): every script of it in order, sharing pm's state. */
function __mk_run(inputJson) {
    var input = JSON.parse(inputJson);
    var V = input.vars || {};
    var scopes = {
        globals: new __mk_Scope(V.globals || {}),
        collectionVariables: new __mk_Scope(V.collectionVariables || {}),
        environment: new __mk_Scope(V.environment || {}, V.environmentName || ''),
        data: new __mk_Scope(V.data || {}),
        local: new __mk_Scope(V.local || {})
    };
    var order = ['local', 'data', 'environment', 'collectionVariables', 'globals'];
    var out = {tests: [], console: [], errors: [], nextRequest: undefined, skipRequest: false};
    var timers = [];

    function lookup(k) {
        for (var i = 0; i < order.length; i++)
            if (scopes[order[i]].has(k))
                return scopes[order[i]].get(k);
        return undefined;
    }
    function replaceIn(s) {
        if (typeof s !== 'string')
            return s;
        for (var pass = 0; pass < 10 && /\{\{[^{}]+\}\}/.test(s); pass++) {
            var changed = false;
            s = s.replace(/\{\{([^{}]+)\}\}/g, function (m, k) {
                var v = lookup(k);
                if (v === undefined)
                    return m;
                changed = true;
                return typeof v === 'string' ? v : __mk_str(v);
            });
            if (!changed)
                break;
        }
        return s;
    }
    function record(name, passed, e, skipped) {
        var t = {name: String(name), passed: passed, skipped: !!skipped};
        if (e) {
            t.error = (e.name || 'Error') + ': ' +
                      (e.message !== undefined ? e.message : String(e));
            if (e.name === 'AssertionError' && e.showDiff) {
                t.expected = __mk_str(e.expected);
                t.actual = __mk_str(e.actual);
            }
        }
        out.tests.push(t);
    }

    var variables = Object.create(__mk_Scope.prototype);
    variables.values = scopes.local.values;
    variables.get = lookup;
    variables.has = function (k) { return lookup(k) !== undefined; };
    variables.replaceIn = replaceIn;
    variables.toObject = function () {
        var o = {};
        for (var i = order.length - 1; i >= 0; i--)
            Object.assign(o, scopes[order[i]].values);
        return o;
    };
    [scopes.environment, scopes.collectionVariables, scopes.globals].forEach(function (s) {
        s.replaceIn = replaceIn;
    });

    var request = new __mk_Request(input.request || {url: ''});
    var response = input.response ? new __mk_Response(input.response) : undefined;
    var cookieList = response ? response.cookies : new __mk_PropertyList([]);

    function test(name, fn) {
        if (typeof fn !== 'function') {
            record(name, true, null, true);
            return pm;
        }
        if (fn.length > 0) {
            /* a test with done(): settled when done is called, here or from a timer */
            var settled = false;
            var entry = {name: String(name), passed: false, skipped: false,
                         error: 'Error: the test did not call done()'};
            out.tests.push(entry);
            var done = function (err) {
                if (settled)
                    return;
                settled = true;
                if (err) {
                    entry.error = (err.name || 'Error') + ': ' + (err.message || String(err));
                } else {
                    entry.passed = true;
                    delete entry.error;
                }
            };
            try {
                fn(done);
            } catch (e) {
                if (!settled) {
                    settled = true;
                    entry.error = (e.name || 'Error') + ': ' + e.message;
                    if (e.name === 'AssertionError' && e.showDiff) {
                        entry.expected = __mk_str(e.expected);
                        entry.actual = __mk_str(e.actual);
                    }
                }
            }
            return pm;
        }
        try {
            fn();
            record(name, true);
        } catch (e) {
            record(name, false, e);
        }
        return pm;
    }
    test.skip = function (name) { record(name, true, null, true); return pm; };

    function expect(v, msg) { return new Assertion(v, msg); }
    expect.fail = function (a, b, msg) {
        throw new AssertionError(arguments.length === 1 ? String(a) : (msg || 'expect.fail()'), b,
                                 a);
    };

    function sendRequest(req, cb) {
        var spec = typeof req === 'string' ? {url: req, method: 'GET'} : req;
        var url = spec.url && typeof spec.url === 'object' ? String(spec.url.raw || spec.url)
                                                           : spec.url;
        var headers = [];
        var h = spec.header || spec.headers;
        if (Array.isArray(h))
            headers = h.map(function (x) { return {key: x.key, value: String(x.value)}; });
        else if (h && typeof h === 'object')
            headers = Object.keys(h).map(function (k) { return {key: k, value: String(h[k])}; });
        var body = spec.body;
        var payload;
        if (body && typeof body === 'object') {
            if (body.mode === 'urlencoded' && Array.isArray(body.urlencoded))
                payload = body.urlencoded.map(function (p) {
                    return encodeURIComponent(p.key) + '=' + encodeURIComponent(p.value);
                }).join('&');
            else if (body.mode === 'raw' || body.raw !== undefined)
                payload = typeof body.raw === 'string' ? body.raw : JSON.stringify(body.raw);
        } else if (typeof body === 'string') {
            payload = body;
        }
        var res, err = null;
        try {
            res = JSON.parse(__mk_host('sendRequest', JSON.stringify({
                url: replaceIn(url), method: spec.method || 'GET', headers: headers, body: payload
            })));
        } catch (e) {
            err = e;
        }
        var r = err ? undefined : new __mk_Response(res);
        /* Postman calls back once the script has finished; so do we (the request itself has
         * already run, synchronously) */
        if (typeof cb === 'function')
            timers.push({fn: cb, ms: 0, seq: timers.length, args: [err, r]});
        return r;
    }

    var pm = {
        info: input.info || {},
        environment: scopes.environment,
        collectionVariables: scopes.collectionVariables,
        globals: scopes.globals,
        variables: variables,
        iterationData: scopes.data,
        request: request,
        response: response,
        cookies: cookieList,
        test: test,
        expect: expect,
        sendRequest: sendRequest,
        execution: {
            setNextRequest: function (n) { out.nextRequest = n === undefined ? null : n; },
            skipRequest: function () { out.skipRequest = true; },
            location: input.info && input.info.location ? input.info.location : []
        },
        setNextRequest: function (n) { out.nextRequest = n === undefined ? null : n; },
        visualizer: {set: function () {}, clear: function () {}},
        require: function (name) { return require(name); }
    };
    pm.execution.location.current = input.info ? input.info.eventName : undefined;

    function log(level) {
        return function () {
            var parts = [];
            for (var i = 0; i < arguments.length; i++)
                parts.push(typeof arguments[i] === 'string' ? arguments[i]
                                                            : __mk_inspect(arguments[i]));
            if (out.console.length < 1000)
                out.console.push({level: level, message: parts.join(' ').slice(0, 10000)});
        };
    }
    var con = {log: log('log'), info: log('info'), warn: log('warn'), error: log('error'),
               debug: log('debug')};

    /* the legacy sandbox API, still in older collections and snippets */
    var tests = {};
    var legacy = {
        setEnvironmentVariable: function (k, v) { scopes.environment.set(k, v); },
        getEnvironmentVariable: function (k) { return scopes.environment.get(k); },
        clearEnvironmentVariable: function (k) { scopes.environment.unset(k); },
        clearEnvironmentVariables: function () { scopes.environment.clear(); },
        setGlobalVariable: function (k, v) { scopes.globals.set(k, v); },
        getGlobalVariable: function (k) { return scopes.globals.get(k); },
        clearGlobalVariable: function (k) { scopes.globals.unset(k); },
        clearGlobalVariables: function () { scopes.globals.clear(); },
        getResponseHeader: function (k) { return response ? response.headers.get(k) : undefined; },
        getResponseCookie: function (k) { return response ? response.cookies.one(k) : undefined; },
        setNextRequest: function (n) { out.nextRequest = n === undefined ? null : n; }
    };

    var g = (function () { return this; })();
    g.pm = pm;
    g.console = con;
    g.postman = legacy;
    g.tests = tests;
    g.tv4 = tv4;
    g.xml2Json = xml2Json;
    g.atob = atob;
    g.btoa = btoa;
    g.require = function (name) {
        throw new Error("require('" + name + "') is not available: this sandbox has no modules");
    };
    g.setTimeout = function (fn, ms) {
        timers.push({fn: fn, ms: +ms || 0, seq: timers.length,
                     args: Array.prototype.slice.call(arguments, 2)});
        return timers.length;
    };
    g.clearTimeout = function (id) {
        if (timers[id - 1])
            timers[id - 1].fn = null;
    };
    g.setInterval = function () {
        throw new Error('setInterval is not available in this sandbox');
    };
    g.environment = scopes.environment.values;
    g.globals = scopes.globals.values;
    g.data = scopes.data.values;
    g.iteration = (input.info || {}).iteration || 0;
    g.request = {url: String(request.url), method: request.method,
                 headers: request.headers.toObject(),
                 data: request.body && request.body.raw, name: request.name, id: request.id};
    if (response) {
        g.responseBody = response.text();
        g.responseCode = {code: response.code, name: response.status, detail: response.status};
        g.responseHeaders = response.headers.toObject();
        g.responseTime = response.responseTime;
        g.responseCookies = response.cookies.all();
    }

    var scripts = input.scripts || [];
    for (var s = 0; s < scripts.length; s++) {
        var fn;
        try {
            fn = new Function(__mk_es5(scripts[s].source));
        } catch (e) {
            out.errors.push({script: scripts[s].name || '', error: e.name + ': ' + e.message +
                             ' (the sandbox runs ECMAScript 5 with common ES2015 syntax)'});
            continue;
        }
        var failure = function (e) {
            out.errors.push({script: scripts[s].name || '',
                             error: (e && e.name ? e.name + ': ' + e.message : String(e))});
        };
        try {
            fn();
        } catch (e) {
            failure(e);
        }
        /* timers run after the script (even one that threw), shortest delay first */
        while (timers.some(function (t) { return t.fn; })) {
            var next = timers.filter(function (t) { return t.fn; }).sort(function (a, b) {
                return a.ms - b.ms || a.seq - b.seq;
            })[0];
            var tf = next.fn;
            next.fn = null;
            try {
                tf.apply(null, next.args);
            } catch (e) {
                failure(e);
            }
        }
    }
    for (var k in tests)
        record(k, !!tests[k], tests[k] ? null : {name: 'AssertionError', message: 'expected ' +
                                                 __mk_inspect(tests[k]) + ' to be truthy'});

    out.vars = {local: scopes.local.values, environment: scopes.environment.values,
                collectionVariables: scopes.collectionVariables.values,
                globals: scopes.globals.values};
    if (input.event === 'prerequest')
        out.request = request.toJSON();
    return JSON.stringify(out);
}
