'use strict';
/** Entry point for `require('.../vendure-plugin')`. */
module.exports = require('./shopkeeper-plugin');
