//! Only the `aliasstat` binary target matters; this empty library lets
//! userspace/build.rs depend on the crate so cargo rebuilds the object when
//! the programs change.
#![no_std]
