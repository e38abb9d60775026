<?php
/**
 * Runs the Paymenter extension outside Paymenter against a gateway, with a stand-in for
 * Paymenter's base class:   PANELQL_URL=… PANELQL_API_KEY=… php examples/paymenter/run_flow.php
 */

namespace App\Classes\Extension {
    class Server
    {
        public function __construct(private array $settings) {}

        public function config($key) { return $this->settings[$key] ?? null; }
    }
}

namespace Illuminate\Support\Facades {
    /** Laravel's cache, as the extension uses it, kept in memory for this run. */
    class Cache
    {
        private static array $items = [];

        public static function get($key) { return self::$items[$key] ?? null; }

        public static function put($key, $value, $ttl) { self::$items[$key] = $value; }

        public static function forget($key) { unset(self::$items[$key]); }
    }
}

namespace {
    require __DIR__ . '/PanelQL.php';

    function suspended($extension, $id)
    {
        $call = new ReflectionMethod($extension, 'graphql');
        return $call->invoke($extension, 'query($id: ID!) { server(id: $id) { suspended } }',
                             ['id' => $id])['server']['suspended'];
    }

    $extension = new Paymenter\Extensions\Servers\PanelQL\PanelQL([
        'url' => getenv('PANELQL_URL') ?: 'http://127.0.0.1:8000/graphql',
        'api_key' => getenv('PANELQL_API_KEY'),
    ]);
    $service = (object) ['id' => getenv('SERVICE_ID') ?: (string) random_int(1000, 999999)];
    $settings = ['provider' => getenv('PANELQL_PROVIDER') ?: 'catalyst-main', 'region' => 'us-east',
                 'memory' => 2048, 'cpu' => 1, 'disk' => 10240];

    /** The user paying on the provider's hosted page (only the demo's simulators take a POST). */
    function pay_as_the_user(array $link)
    {
        $ch = curl_init($link['url']);
        curl_setopt_array($ch, [CURLOPT_POST => true, CURLOPT_RETURNTRANSFER => true,
                                CURLOPT_POSTFIELDS => $link['kind'] === 'ORDER' ? 'funding=balance' : 'card=success']);
        curl_exec($ch);
        $status = curl_getinfo($ch, CURLINFO_HTTP_CODE);
        curl_close($ch);
        if ($status !== 303) {
            throw new Exception("paying on the hosted page answered $status");
        }
    }

    try {
        $ok = $extension->testConfig();
        if ($ok !== true) {
            throw new Exception("testConfig: $ok");
        }
        $properties = $extension->createServer($service, $settings, []);
        echo "ok   createServer {$properties['panelql_server_id']}\n";
        $id = $properties['panelql_server_id'];
        $action = $extension->getActions($service, $settings, $properties)[0];
        // catalyst-main has no login links: the client area shows PanelQL's reason instead.
        echo 'ok   getActions: ' . ($action['type'] === 'button' ? 'login button'
                                    : $action['text']) . "\n";
        foreach (['first', 'again'] as $round) {  // suspend, unsuspend, suspend: each happens
            $extension->suspendServer($service, $settings, $properties);
            if (!suspended($extension, $id)) {
                throw new Exception("suspendServer ($round) left the server running");
            }
            echo "ok   suspendServer ($round)\n";
            if ($round === 'first') {  // the overdue invoice, paid on the provider's page
                $link = $extension->paymentLink($service, getenv('PANELQL_BILLING') ?: 'stripe',
                                                '20.00', "Service {$service->id}", 'user@example.com');
                echo "ok   paymentLink {$link['kind']} {$link['url']}\n";
                pay_as_the_user($link);
                if ($link['kind'] === 'ORDER') {
                    $extension->capturePayment($service, $link['invoice'], $link['id']);
                }
                $deadline = time() + 30;
                while ($extension->invoiceStatus($link['invoice']) !== 'PAID') {
                    if (time() > $deadline) {
                        throw new Exception('the payment never arrived');
                    }
                    usleep(200000);
                }
                echo "ok   invoice PAID\n";
            }
            $extension->unsuspendServer($service, $settings, $properties);
            if (suspended($extension, $id)) {
                throw new Exception("unsuspendServer ($round) left the server suspended");
            }
            echo "ok   unsuspendServer ($round)\n";
        }
        $extension->upgradeServer($service, ['memory' => 4096] + $settings, $properties);
        echo "ok   upgradeServer\n";
        $refund = $extension->refundInvoice($service, $link['invoice'], '10.00');
        if ($refund['status'] !== 'PARTIALLY_REFUNDED') {
            throw new Exception('refund: ' . json_encode($refund));
        }
        echo "ok   refundInvoice half: {$refund['status']} {$refund['amountRefunded']['amount']}\n";
        $extension->terminateServer($service, $settings, $properties);
        echo "ok   terminateServer\nPaymenter flow done for service {$service->id}\n";
    } catch (Exception $e) {
        echo 'FAIL ' . $e->getMessage() . "\n";
        exit(1);
    }
}
