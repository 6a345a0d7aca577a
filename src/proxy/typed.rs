//! What every proxy has, for the proxies generic over a plain-data type `T`
//! (`TypedValueProxy<T>`, `ArrayProxy<T>`): the generic twin of `proxy_common!`, delegating to
//! the same dispatcher entry points.

/// Implements `AsProxy`, `call_method`, `call_method_kw`, `method_id`, `call_id`, `get_value`,
/// `token`, `to_str`, `Display`, `Debug`, `Clone` and `From<&P<T>> for Value` for a proxy type
/// generic over `T: Pod`, with fields `h: Arc<Handle>` and `_t: PhantomData<fn() -> T>`.
macro_rules! pod_proxy_common {
    ($ty:ident) => {
        impl<T: ::bytemuck::Pod> $crate::AsProxy for $ty<T> {
            #[inline]
            fn token(&self) -> $crate::Token {
                self.h.token
            }
        }

        impl<T: ::bytemuck::Pod> Clone for $ty<T> {
            fn clone(&self) -> Self {
                $ty {
                    h: self.h.clone(),
                    _t: ::std::marker::PhantomData,
                }
            }
        }

        impl<T: ::bytemuck::Pod> $ty<T> {
            /// Calls a method of the referent by name with positional arguments, as CPython's
            /// `proxy._callmethod(name, args)`.
            ///
            /// # Errors
            /// `AttributeError` for an unknown method, `TypeError` for bad arguments, and the
            /// method's own errors (`IndexError`, `OverflowError`, …).
            pub fn call_method(
                &self,
                name: &str,
                args: impl $crate::IntoArgs,
            ) -> $crate::Result<$crate::Value> {
                self.call_method_kw(name, args, &[])
            }

            /// Calls a method by name with positional and keyword arguments.
            ///
            /// # Errors
            /// As [`Self::call_method`].
            pub fn call_method_kw(
                &self,
                name: &str,
                args: impl $crate::IntoArgs,
                kwargs: &[(&str, $crate::Value)],
            ) -> $crate::Result<$crate::Value> {
                let mid = $crate::dispatch::MethodId::resolve(self.h.token.type_id, name)?;
                self.call_id(mid, $crate::IntoArgs::into_args(args).as_ref(), kwargs)
            }

            /// Resolves a method name once, for [`Self::call_id`].
            ///
            /// # Errors
            /// `AttributeError` for an unknown method.
            pub fn method_id(&self, name: &str) -> $crate::Result<$crate::dispatch::MethodId> {
                $crate::dispatch::MethodId::resolve(self.h.token.type_id, name)
            }

            /// Calls a method resolved with [`Self::method_id`].
            ///
            /// # Errors
            /// As [`Self::call_method`].
            pub fn call_id(
                &self,
                mid: $crate::dispatch::MethodId,
                args: &[$crate::Value],
                kwargs: &[(&str, $crate::Value)],
            ) -> $crate::Result<$crate::Value> {
                $crate::dispatch::call(&self.h.core, &self.h.token, mid, args, kwargs)
            }

            /// A copy of the referent as a [`Value`](crate::Value) (CPython's `_getvalue()`).
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            pub fn get_value(&self) -> $crate::Result<$crate::Value> {
                $crate::dispatch::value_of(&self.h.core, &self.h.token)
            }

            /// The referent's token: plain data to hand to another process.
            #[inline]
            pub fn token(&self) -> $crate::Token {
                self.h.token
            }

            /// Python's `str()` of the referent.
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            pub fn to_str(&self) -> $crate::Result<String> {
                $crate::dispatch::str_of(&self.h.core, &self.h.token)
            }
        }

        /// Python's `str()` of the referent (an error is shown in angle brackets).
        impl<T: ::bytemuck::Pod> ::std::fmt::Display for $ty<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.to_str() {
                    Ok(s) => f.write_str(&s),
                    Err(e) => write!(f, "<unprintable {}: {e}>", self.h.token.typeid()),
                }
            }
        }

        /// The repr of the proxy, as CPython prints it.
        impl<T: ::bytemuck::Pod> ::std::fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let (typeid, class) = $crate::token::type_names(self.h.token.type_id);
                write!(
                    f,
                    "<{class} object, typeid '{typeid}' at {:#x}>",
                    ::std::sync::Arc::as_ptr(&self.h) as usize
                )
            }
        }

        impl<T: ::bytemuck::Pod> From<&$ty<T>> for $crate::Value {
            fn from(p: &$ty<T>) -> $crate::Value {
                $crate::Value::Proxy(p.h.token)
            }
        }

        impl<T: ::bytemuck::Pod> From<$ty<T>> for $crate::Proxy {
            fn from(p: $ty<T>) -> $crate::Proxy {
                $crate::Proxy { h: p.h }
            }
        }
    };
}
