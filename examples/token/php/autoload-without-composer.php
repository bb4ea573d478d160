<?php
// Stands in for Composer's vendor/autoload.php where firebase/php-jwt was installed without
// Composer (install-php-jwt.sh); the snippet's test puts it at vendor/autoload.php.
$dir = getenv('FIREBASE_PHP_JWT_DIR') ?: '/usr/local/share/php/firebase-php-jwt';
if (!is_file("$dir/src/JWT.php")) {
    fwrite(STDERR, "firebase/php-jwt is not in $dir: run bash examples/token/php/install-php-jwt.sh\n");
    exit(3);
}
spl_autoload_register(function (string $class) use ($dir): void {
    $prefix = 'Firebase\\JWT\\';
    if (str_starts_with($class, $prefix)) {
        require "$dir/src/" . substr($class, strlen($prefix)) . '.php';
    }
});
